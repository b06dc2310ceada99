/**
 * Certification of a stretch of a test set, as the MACER authors'
 * `rs/certify.py` runs it: images `start, start + skip, ...`, each certified
 * with Cohen's CERTIFY in hard mode, MACER's soft mode, or both from shared
 * samples; per-image lines in Cohen's TSV format, the radii in a MAT file, a
 * JSON summary, and the metrics for the printed summary.
 *
 * Every image's noise is a fixed stretch of the Philox stream `seed`, placed by
 * the image's index, so an image's certificate does not depend on which images
 * were certified before it.
 *
 * @module
 */
import { imageAt } from "../data/summary.ts";
import type { ImageDataset } from "../data/types.ts";
import { writeMat } from "../io/mat_writer.ts";
import {
  CERTIFY_LOG_HEADER,
  CertifyLog,
  type CertifySummary,
  formatCertifyRow,
  writeSummaryJson,
} from "../io/results.ts";
import type { Module } from "../nn/module.ts";
import { type Certificate, certify, certifyBoth } from "../smoothing/certify.ts";
import {
  type CertifyMetrics,
  computeMetrics,
  type ImageResult,
  matRadius,
} from "../smoothing/metrics.ts";
import { drawSpan, EngineSampler } from "../smoothing/sampler.ts";
import { appendJournal, type JournalEntry, readJournal } from "./journal.ts";

/** "hard", "soft", or "both" (one set of samples serves both). */
export type CertifyRunMode = "hard" | "soft" | "both";

/** Settings of a certification run (reference defaults in brackets). */
export interface CertifyRunOptions {
  mode: CertifyRunMode;
  /** Noise standard deviation [0.25]. */
  sigma: number;
  /** Inverse temperature of soft mode [16]. */
  beta: number;
  /** Selection samples [100]. */
  n0: number;
  /** Estimation samples [100,000]. */
  n: number;
  /** Failure probability [0.001]. */
  alpha: number;
  /** Batch of noisy copies per forward pass [1,000]. */
  batch: number;
  /** Philox key of the certification noise. */
  seed: number;
  /** Dataset indices to certify, in order. */
  indices: readonly number[];
  /**
   * Where to write results: `<dir>/<name>.mat` (MACER's radii), `<dir>/<name>.<mode>.tsv`
   * (Cohen's per-image log, one per mode) and `<dir>/<name>.summary.json`.
   */
  output?: { dir: string; name: string };
  /** Extra parameters recorded in the summary JSON. */
  params?: Record<string, unknown>;
  /**
   * A journal file of finished images (see journal.ts): images it already holds are not
   * certified again, so a killed run continues where it stopped.
   */
  journal?: string;
  /** Called after every image. */
  onImage?: (p: ImageProgress) => void;
}

/** Progress after one image. */
export interface ImageProgress {
  /** Images done. */
  done: number;
  total: number;
  /** Dataset index of the image. */
  index: number;
  label: number;
  /** Certificates by mode. */
  certificates: Partial<Record<"hard" | "soft", Certificate>>;
  /** Seconds this image took. */
  seconds: number;
  /** Seconds since the run began. */
  elapsed: number;
}

/** Results of a run, by mode. */
export interface CertifyRunResult {
  results: Partial<Record<"hard" | "soft", ImageResult[]>>;
  metrics: Partial<Record<"hard" | "soft", CertifyMetrics>>;
  /** Files written. */
  files: string[];
  seconds: number;
}

/** The modes a run certifies. */
export function runModes(mode: CertifyRunMode): ("hard" | "soft")[] {
  return mode === "both" ? ["hard", "soft"] : [mode];
}

/**
 * Certifies `o.indices` of `ds` with the smoothed `model`.
 *
 * @param model the base classifier (evaluation mode is set for every batch)
 * @param ds the test set
 * @param o modes, sampling parameters, images, outputs
 * @returns per-image results and metrics for each mode
 */
export async function certifyImages(
  model: Module,
  ds: ImageDataset,
  o: CertifyRunOptions,
): Promise<CertifyRunResult> {
  for (const i of o.indices) {
    if (!Number.isInteger(i) || i < 0 || i >= ds.count) {
      throw new RangeError(`Image index ${i} is out of range (0..${ds.count - 1})`);
    }
  }
  const modes = runModes(o.mode);
  const shape = [ds.channels, ds.height, ds.width];
  const size = ds.channels * ds.height * ds.width;
  // Each image owns a fixed stretch of the stream, whatever the images before it.
  const stride = drawSpan(o.n0, o.batch, size) + drawSpan(o.n, o.batch, size);
  const maxIndex = Math.max(0, ...o.indices);
  if ((maxIndex + 1) * stride > 9e15) {
    throw new RangeError("Too many samples for one noise stream; lower --n or the image indices");
  }
  const opts = { n0: o.n0, n: o.n, alpha: o.alpha, batch: o.batch, sigma: o.sigma };
  const files: string[] = [];
  const logs = new Map<"hard" | "soft", CertifyLog>();
  if (o.output) {
    await Deno.mkdir(o.output.dir, { recursive: true });
    for (const m of modes) {
      const path = `${o.output.dir}/${o.output.name}.${m}.tsv`;
      logs.set(m, await CertifyLog.create(path));
      files.push(path);
    }
  }
  const results: Partial<Record<"hard" | "soft", ImageResult[]>> = {};
  for (const m of modes) results[m] = [];
  const t0 = performance.now();
  const record = async (e: JournalEntry) => {
    for (const m of modes) {
      const c = e.certificates[m]!;
      results[m]!.push({ label: e.label, prediction: c.prediction, radius: c.radius });
      await logs.get(m)?.append({
        idx: e.index,
        label: e.label,
        predict: c.prediction,
        radius: c.radius,
        correct: c.prediction === e.label,
        time: e.seconds,
      });
    }
  };
  try {
    const done = o.journal === undefined ? [] : await readJournal(o.journal, o.indices);
    for (const e of done) await record(e);
    for (let i = done.length; i < o.indices.length; i++) {
      const index = o.indices[i];
      const label = ds.labels[index];
      const t1 = performance.now();
      const sampler = new EngineSampler(model, imageAt(ds, index), shape, {
        sigma: o.sigma,
        beta: o.beta,
        seed: o.seed,
        offset: index * stride,
        hardOnly: o.mode === "hard",
      });
      const certs: Partial<Record<"hard" | "soft", Certificate>> = o.mode === "both"
        ? await certifyBoth(sampler, opts)
        : { [o.mode]: await certify(sampler, o.mode, opts) };
      const seconds = (performance.now() - t1) / 1000;
      const entry = { index, label, certificates: certs, seconds };
      await record(entry);
      if (o.journal !== undefined) await appendJournal(o.journal, entry);
      o.onImage?.({
        done: i + 1,
        total: o.indices.length,
        index,
        label,
        certificates: certs,
        seconds,
        elapsed: (performance.now() - t0) / 1000,
      });
    }
  } finally {
    for (const log of logs.values()) await log.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  const metrics: Partial<Record<"hard" | "soft", CertifyMetrics>> = {};
  for (const m of modes) metrics[m] = computeMetrics(results[m]!);
  if (o.output) {
    const written = await writeCertifyFiles(o.output, o, results, metrics, seconds);
    files.unshift(written[0]);
    files.push(written[1]);
  }
  return { results, metrics, files, seconds };
}

/** The results of each mode, in the order of `entries`. */
export function resultsOf(
  mode: CertifyRunMode,
  entries: readonly JournalEntry[],
): Partial<Record<"hard" | "soft", ImageResult[]>> {
  return Object.fromEntries(
    runModes(mode).map((m) => [
      m,
      entries.map((e) => ({
        label: e.label,
        prediction: e.certificates[m]!.prediction,
        radius: e.certificates[m]!.radius,
      })),
    ]),
  );
}

/**
 * Cohen's per-image log of one mode as one text, byte for byte what the streaming
 * {@linkcode CertifyLog} of {@linkcode certifyImages} leaves (for results put together
 * from shards).
 */
export function certifyLogText(mode: "hard" | "soft", entries: readonly JournalEntry[]): string {
  const rows = entries.map((e) => {
    const c = e.certificates[mode]!;
    return formatCertifyRow({
      idx: e.index,
      label: e.label,
      predict: c.prediction,
      radius: c.radius,
      correct: c.prediction === e.label,
      time: e.seconds,
    });
  });
  return [CERTIFY_LOG_HEADER, ...rows].map((l) => l + "\n").join("");
}

/**
 * Writes `<dir>/<name>.mat` (MACER's radii) and `<dir>/<name>.summary.json`, as a run of
 * {@linkcode certifyImages} ends.
 *
 * @returns the two paths
 */
export async function writeCertifyFiles(
  output: { dir: string; name: string },
  o: Omit<CertifyRunOptions, "output" | "journal" | "onImage">,
  results: Partial<Record<"hard" | "soft", ImageResult[]>>,
  metrics: Partial<Record<"hard" | "soft", CertifyMetrics>>,
  seconds: number,
): Promise<[string, string]> {
  const modes = runModes(o.mode);
  const mat = `${output.dir}/${output.name}.mat`;
  await writeMat(
    mat,
    Object.fromEntries(modes.map((m) => [m, Float64Array.from(results[m]!, matRadius)])),
  );
  const summary: CertifySummary = {
    params: {
      mode: o.mode,
      sigma: o.sigma,
      beta: o.beta,
      n0: o.n0,
      n: o.n,
      alpha: o.alpha,
      batch: o.batch,
      seed: o.seed,
      num_img: o.indices.length,
      ...o.params,
    },
    modes: metrics as Record<string, CertifyMetrics>,
    timings: { total_s: seconds, per_image_s: seconds / Math.max(1, o.indices.length) },
  };
  const json = `${output.dir}/${output.name}.summary.json`;
  await writeSummaryJson(json, summary);
  return [mat, json];
}
