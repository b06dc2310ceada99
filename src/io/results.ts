/**
 * Result files of a certification run, in the formats existing tools read:
 * Cohen's per-image TSV log (`certify.py`), MACER's console summary (`rs/certify.py`), and
 * a JSON summary of certified accuracy, ACR, counts and timings.
 *
 * @module
 */

import type { CertifyMetrics } from "../smoothing/metrics.ts";
import { writeFileAtomic } from "./atomic.ts";

// ---------------------------------------------------------------------------------------
// Python-compatible number formatting

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Shortest round-trip digits and decimal exponent of a finite positive number. */
function shortestDigits(x: number): { digits: string; exp: number } {
  const [m, e] = x.toExponential().split("e");
  return { digits: m.replace(".", ""), exp: Number(e) };
}

function stripZeros(digits: string): string {
  return digits.replace(/0+$/, "") || "0";
}

/** Fixed notation of a digit string d1 d2 ... with value 0.d1d2... * 10^(exp+1). */
function fixed(digits: string, exp: number, minFrac: number): string {
  let intPart: string, frac: string;
  if (exp >= 0) {
    const padded = digits.padEnd(exp + 1, "0");
    intPart = padded.slice(0, exp + 1);
    frac = padded.slice(exp + 1);
  } else {
    intPart = "0";
    frac = "0".repeat(-exp - 1) + digits;
  }
  frac = frac.replace(/0+$/, "");
  if (frac.length < minFrac) frac = frac.padEnd(minFrac, "0");
  return frac.length ? `${intPart}.${frac}` : intPart;
}

function scientific(digits: string, exp: number): string {
  const d = stripZeros(digits);
  const mant = d.length > 1 ? `${d[0]}.${d.slice(1)}` : d;
  const sign = exp < 0 ? "-" : "+";
  return `${mant}e${sign}${String(Math.abs(exp)).padStart(2, "0")}`;
}

function special(x: number): string | undefined {
  if (Number.isNaN(x)) return "nan";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  return undefined;
}

/**
 * Python's `repr(float)` / `str(float)` (also numpy float64's `str`): shortest round-trip
 * digits, fixed notation for exponents in [-4, 16), always with a fractional part.
 *
 * @param x any number
 * @returns e.g. "100.0", "0.30000000000000004", "1e-05", "1.5e+16"
 */
export function pyRepr(x: number): string {
  const s = special(x);
  if (s !== undefined) return s;
  const sign = x < 0 ? "-" : "";
  const { digits, exp } = shortestDigits(Math.abs(x));
  if (exp >= -4 && exp < 16) return sign + fixed(digits, exp, 1);
  return sign + scientific(digits, exp);
}

/** Digits of |x| rounded to p significant figures, ties to even as Python does. */
function roundSignificant(x: number, p: number): { digits: string; exp: number } {
  let s = x.toExponential(p - 1);
  // JS breaks exact decimal ties upward; Python (correctly rounded) breaks them to even.
  const longer = x.toExponential(Math.min(100, p + 25));
  const [lm] = longer.split("e");
  const tail = lm.replace(".", "").slice(p);
  if (/^50*$/.test(tail)) {
    const kept = lm.replace(".", "").slice(0, p);
    if (Number(kept[kept.length - 1]) % 2 === 0) {
      s = `${kept[0]}${p > 1 ? "." + kept.slice(1) : ""}e${longer.split("e")[1]}`;
    }
  }
  const [m, e] = s.split("e");
  return { digits: m.replace(".", ""), exp: Number(e) };
}

/**
 * Python's `"{:.p}".format(x)` (format spec with a precision and no type), which Cohen's
 * certify.py uses for the radius column (`{:.3}`): p significant digits, scientific when
 * the exponent is < -4 or >= p - 1, at least one digit after the point in fixed notation.
 *
 * @param x any number
 * @param precision significant digits (default 3)
 * @returns e.g. "0.412", "1.0", "1.23e+02", "1e-05"
 */
export function pyFormatPrecision(x: number, precision = 3): string {
  if (!Number.isInteger(precision) || precision < 1 || precision > 21) {
    throw new RangeError(`precision must be an integer in [1, 21], got ${precision}`);
  }
  const s = special(x);
  if (s !== undefined) return s;
  const sign = x < 0 ? "-" : "";
  const { digits, exp } = roundSignificant(Math.abs(x), precision);
  if (exp >= -4 && exp < precision - 1) return sign + fixed(digits, exp, 1);
  return sign + scientific(digits, exp);
}

/**
 * Python's `str(datetime.timedelta(seconds=s))`, which certify.py writes in the time
 * column: "H:MM:SS" or "H:MM:SS.ffffff", with "N day(s), " in front past 24 hours.
 *
 * @param seconds non-negative duration
 * @returns e.g. "0:00:01.234567"
 * @throws {RangeError} for negative or non-finite durations
 */
export function formatTimedelta(seconds: number): string {
  if (!(seconds >= 0 && Number.isFinite(seconds))) {
    throw new RangeError(`Duration must be finite and non-negative, got ${seconds}`);
  }
  const whole = Math.trunc(seconds);
  const us = roundHalfEven((seconds - whole) * 1e6); // timedelta rounds half to even
  let total = whole + Math.floor(us / 1e6);
  const micro = us % 1e6;
  const days = Math.floor(total / 86400);
  total -= days * 86400;
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  const two = (n: number) => String(n).padStart(2, "0");
  let out = `${h}:${two(m)}:${two(sec)}`;
  if (micro) out += `.${String(micro).padStart(6, "0")}`;
  if (days) out = `${days} day${days === 1 ? "" : "s"}, ${out}`;
  return out;
}

// ---------------------------------------------------------------------------------------
// Cohen's per-image log

/** Header line of Cohen's certify.py log. */
export const CERTIFY_LOG_HEADER = "idx\tlabel\tpredict\tradius\tcorrect\ttime";

/** One line of the per-image log. */
export interface CertifyLogRow {
  /** Index of the image in its split. */
  idx: number;
  /** True label. */
  label: number;
  /** Prediction, -1 for abstain. */
  predict: number;
  /** Certified radius (0 on abstain). */
  radius: number;
  /** 1/true when the prediction equals the label. */
  correct: number | boolean;
  /** Seconds spent certifying this image. */
  time: number;
}

/**
 * One log line (no newline), byte-for-byte as certify.py prints it:
 * `"{}\t{}\t{}\t{:.3}\t{}\t{}".format(i, label, prediction, radius, correct, timedelta)`.
 *
 * @param row the image's result
 * @returns the tab-separated line
 */
export function formatCertifyRow(row: CertifyLogRow): string {
  const correct = typeof row.correct === "boolean" ? (row.correct ? 1 : 0) : row.correct;
  return [
    row.idx,
    row.label,
    row.predict,
    pyFormatPrecision(row.radius, 3),
    correct,
    formatTimedelta(row.time),
  ].join("\t");
}

/** Options of {@linkcode CertifyLog.create}. */
export interface CertifyLogOptions {
  /** fsync after every line (survives a power loss, costs a disk flush per image). */
  fsync?: boolean;
  /** Keep an existing log and append to it instead of starting a new one. */
  append?: boolean;
}

const encoder = new TextEncoder();

/**
 * Streaming writer of Cohen's per-image TSV log. Each row is written with one `write`
 * call as soon as it is known, so a crash loses at most the image in progress.
 */
export class CertifyLog {
  #file: Deno.FsFile;
  #fsync: boolean;

  private constructor(file: Deno.FsFile, fsync: boolean) {
    this.#file = file;
    this.#fsync = fsync;
  }

  /**
   * Opens a log: truncates it and writes the header, or with `append` keeps an existing
   * log (writing the header only when the file is new or empty).
   *
   * @param path log file
   * @param opts fsync and append behaviour
   * @returns the open writer; call {@linkcode CertifyLog.close} when done
   */
  static async create(path: string, opts: CertifyLogOptions = {}): Promise<CertifyLog> {
    const append = opts.append ?? false;
    const file = await Deno.open(path, {
      write: true,
      create: true,
      append,
      truncate: !append,
    });
    const log = new CertifyLog(file, opts.fsync ?? false);
    try {
      if (!append || (await file.stat()).size === 0) await log.#writeLine(CERTIFY_LOG_HEADER);
    } catch (e) {
      file.close();
      throw e;
    }
    return log;
  }

  async #writeLine(line: string): Promise<void> {
    const bytes = encoder.encode(line + "\n");
    let off = 0;
    while (off < bytes.length) off += await this.#file.write(bytes.subarray(off));
    if (this.#fsync) await this.#file.sync();
  }

  /**
   * Appends one image's line.
   *
   * @param row the image's result
   */
  async append(row: CertifyLogRow): Promise<void> {
    await this.#writeLine(formatCertifyRow(row));
  }

  /** Flushes to disk and closes the file. */
  async close(): Promise<void> {
    try {
      await this.#file.sync();
    } finally {
      this.#file.close();
    }
  }

  /** Closes on `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Header line of Cohen's predict.py log. */
export const PREDICT_LOG_HEADER = "idx\tlabel\tpredict\tcorrect\ttime";

/** One line of the per-image PREDICT log. */
export interface PredictLogRow {
  idx: number;
  label: number;
  /** Prediction, -1 for abstain. */
  predict: number;
  /** Seconds spent on this image. */
  time: number;
}

/**
 * One PREDICT log line (no newline), as predict.py prints it:
 * `"{}\t{}\t{}\t{}\t{}".format(i, label, prediction, correct, timedelta)`.
 *
 * @param row the image's result
 * @returns the tab-separated line
 */
export function formatPredictRow(row: PredictLogRow): string {
  const correct = row.predict === row.label ? 1 : 0;
  return [row.idx, row.label, row.predict, correct, formatTimedelta(row.time)].join("\t");
}

/** A parsed PREDICT log line; `time` stays the text predict.py wrote. */
export interface ParsedPredictRow {
  idx: number;
  label: number;
  predict: number;
  correct: number;
  time: string;
}

/**
 * Parses a PREDICT log (ours or predict.py's). A truncated last line is ignored.
 *
 * @param text the file's contents
 * @returns the rows in file order
 * @throws {Error} when the header is not predict.py's or a line has the wrong fields
 */
export function parsePredictLog(text: string): ParsedPredictRow[] {
  const lines = text.split("\n");
  if (lines[0].replace(/\r$/, "") !== PREDICT_LOG_HEADER) {
    throw new Error(`Not a predict log: expected header "${PREDICT_LOG_HEADER}"`);
  }
  const rows: ParsedPredictRow[] = [];
  for (let i = 1; i < lines.length - 1; i++) {
    const f = lines[i].replace(/\r$/, "").split("\t");
    if (f.length !== 5) throw new Error(`Predict log line ${i + 1} has ${f.length} fields, not 5`);
    rows.push({
      idx: Number(f[0]),
      label: Number(f[1]),
      predict: Number(f[2]),
      correct: Number(f[3]),
      time: f[4],
    });
  }
  return rows;
}

/** A parsed log line; `time` stays the text certify.py wrote. */
export interface ParsedLogRow {
  idx: number;
  label: number;
  predict: number;
  radius: number;
  correct: number;
  time: string;
}

/**
 * Parses a per-image log (ours or certify.py's), e.g. to resume a run or to report on it.
 * A truncated last line (a crash mid-write) is ignored.
 *
 * @param text the file's contents
 * @returns the rows in file order
 * @throws {Error} when the header is not certify.py's
 */
export function parseCertifyLog(text: string): ParsedLogRow[] {
  const lines = text.split("\n");
  if (lines[0].replace(/\r$/, "") !== CERTIFY_LOG_HEADER) {
    throw new Error(`Not a certify log: expected header "${CERTIFY_LOG_HEADER}"`);
  }
  const rows: ParsedLogRow[] = [];
  for (let i = 1; i < lines.length; i++) {
    const complete = i < lines.length - 1; // the last piece has no newline after it
    const f = lines[i].replace(/\r$/, "").split("\t");
    if (!complete) break;
    if (f.length !== 6) throw new Error(`Certify log line ${i + 1} has ${f.length} fields, not 6`);
    rows.push({
      idx: Number(f[0]),
      label: Number(f[1]),
      predict: Number(f[2]),
      radius: Number(f[3]),
      correct: Number(f[4]),
      time: f[5],
    });
  }
  return rows;
}

// ---------------------------------------------------------------------------------------
// Summaries

/** The JSON summary of one certification run. */
export interface CertifySummary {
  /** Run parameters worth keeping beside the numbers (sigma, n0, n, alpha, ...). */
  params?: Record<string, unknown>;
  /** Metrics per mode, e.g. `{ hard, soft }`. */
  modes: Record<string, CertifyMetrics>;
  /** Wall-clock timings in seconds. */
  timings?: Record<string, number>;
}

/**
 * Writes the JSON summary atomically (pretty-printed, trailing newline).
 *
 * @param path destination file
 * @param summary metrics per mode, parameters and timings
 */
export async function writeSummaryJson(path: string, summary: CertifySummary): Promise<void> {
  const doc = { format: "macer-certify-summary", version: 1, ...summary };
  await writeFileAtomic(path, encoder.encode(JSON.stringify(doc, null, 2) + "\n"));
}

function modeLines(m: CertifyMetrics): string[] {
  const total = m.counts.total;
  const lines = m.certifiedAccuracy.map((c) =>
    `Radius: ${pyRepr(c.radius)}  Number: ${c.count}  Acc: ${pyRepr(c.count / total * 100)}`
  );
  lines.push(`ACR: ${pyRepr(m.acr)}`);
  return lines;
}

/**
 * The summary MACER's `rs/certify.py` prints, line for line: `===Certify Summary===`,
 * `Total Image Number: N`, then per mode `Radius: 0.25  Number: N  Acc: A` (A in percent)
 * and `ACR: x`, with `===Hard certify===` / `===Soft certify===` headings when both modes
 * are given. Numbers use Python's float formatting.
 *
 * @param metrics one mode's metrics, or `{ hard, soft }`
 * @returns the lines, without newlines
 */
export function macerSummaryLines(
  metrics: CertifyMetrics | { hard: CertifyMetrics; soft: CertifyMetrics },
): string[] {
  if ("hard" in metrics) {
    return [
      "===Certify Summary===",
      `Total Image Number: ${metrics.hard.counts.total}`,
      "===Hard certify===",
      ...modeLines(metrics.hard),
      "===Soft certify===",
      ...modeLines(metrics.soft),
    ];
  }
  return [
    "===Certify Summary===",
    `Total Image Number: ${metrics.counts.total}`,
    ...modeLines(metrics),
  ];
}

/**
 * Prints {@linkcode macerSummaryLines} to stdout.
 *
 * @param metrics one mode's metrics, or `{ hard, soft }`
 */
export function printMacerSummary(
  metrics: CertifyMetrics | { hard: CertifyMetrics; soft: CertifyMetrics },
): void {
  for (const line of macerSummaryLines(metrics)) console.log(line);
}
