/**
 * The summary a pipeline run leaves in its run directory (`summary.json`): one entry per
 * stage, with what the report draws (losses per epoch, certified accuracy, predictions).
 * The pipeline runner writes it; the report reads it back through {@linkcode readRunSummary}.
 *
 * @module
 */

import type { CertifyMetrics } from "../smoothing/metrics.ts";

/** The `format` field of every run summary. */
export const SUMMARY_FORMAT = "macer-pipeline-summary";
/** The summary version this code reads and writes. */
export const SUMMARY_VERSION = 1;
/** File name of the summary inside a run directory. */
export const SUMMARY_FILE = "summary.json";

/** One training epoch. */
export interface EpochSummary {
  /** Epoch number, from 1. */
  epoch: number;
  /** Learning rate used in this epoch. */
  lr: number;
  /** Mean classification loss per image; null where it was not finite (JSON has no NaN). */
  classification: number | null;
  /** Mean robustness loss per image (0 for Gaussian augmentation); null where not finite. */
  robustness: number | null;
  /**
   * Wall-clock seconds of the epoch. A pipeline keeps timings out of summary.json (so that
   * reruns give the same bytes); `readRunSummary` fills them in from manifest.json.
   */
  seconds?: number;
}

/** A training stage. */
export interface TrainStageSummary {
  name: string;
  kind: "train";
  /** Training method, e.g. "macer" or "gaussian". */
  method: string;
  sigma: number;
  model: string;
  dataset: string;
  epochs: EpochSummary[];
}

/** Certification modes a certify stage may report. */
export type CertifyMode = "hard" | "soft";

/** A certification stage: metrics per mode (one or both). */
export interface CertifyStageSummary {
  name: string;
  kind: "certify";
  /** Name of the stage whose model was certified. */
  model: string;
  sigma: number;
  /** Monte Carlo samples per image used for estimation. */
  n: number;
  modes: Partial<Record<CertifyMode, CertifyMetrics>>;
}

/** A prediction stage (Cohen's PREDICT). */
export interface PredictStageSummary {
  name: string;
  kind: "predict";
  model: string;
  sigma: number;
  count: number;
  correct: number;
  abstained: number;
  accuracy: number;
  abstention_rate: number;
}

/** Any stage of a run summary. */
export type StageSummary = TrainStageSummary | CertifyStageSummary | PredictStageSummary;

/** The contents of `summary.json`. */
export interface RunSummary {
  format: typeof SUMMARY_FORMAT;
  version: typeof SUMMARY_VERSION;
  /** The pipeline's name. */
  name: string;
  stages: StageSummary[];
}

/** A summary file that is missing, unreadable or not in the expected format. */
export class SummaryError extends Error {
  /** The file at fault. */
  file: string;
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = "SummaryError";
    this.file = file;
  }
}

type Obj = Record<string, unknown>;

/** Validates fields and throws a SummaryError naming the file and the field's path. */
class Checker {
  constructor(readonly file: string) {}

  fail(path: string, msg: string): never {
    throw new SummaryError(this.file, path ? `${path}: ${msg}` : msg);
  }

  object(v: unknown, path: string): Obj {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      this.fail(path, `expected an object, got ${describe(v)}`);
    }
    return v as Obj;
  }

  array(o: Obj, key: string, path: string): unknown[] {
    const v = o[key];
    if (!Array.isArray(v)) this.fail(join(path, key), `expected an array, got ${describe(v)}`);
    return v;
  }

  string(o: Obj, key: string, path: string): string {
    const v = o[key];
    if (typeof v !== "string") this.fail(join(path, key), `expected a string, got ${describe(v)}`);
    return v;
  }

  number(o: Obj, key: string, path: string): number {
    const v = o[key];
    if (typeof v !== "number" || !Number.isFinite(v)) {
      this.fail(join(path, key), `expected a finite number, got ${describe(v)}`);
    }
    return v;
  }

  numberOrNull(o: Obj, key: string, path: string): number | null {
    return o[key] === null ? null : this.number(o, key, path);
  }
}

function join(path: string, key: string | number): string {
  return typeof key === "number" ? `${path}[${key}]` : path ? `${path}.${key}` : key;
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  return typeof v === "string" ? JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v) : `${v}`;
}

function checkMetrics(c: Checker, v: unknown, path: string): CertifyMetrics {
  const o = c.object(v, path);
  const certifiedAccuracy = c.array(o, "certifiedAccuracy", path).map((e, i) => {
    const p = join(join(path, "certifiedAccuracy"), i);
    const r = c.object(e, p);
    return {
      radius: c.number(r, "radius", p),
      count: c.number(r, "count", p),
      accuracy: c.number(r, "accuracy", p),
    };
  });
  const cp = join(path, "counts");
  const k = c.object(o.counts, cp);
  return {
    certifiedAccuracy,
    acr: c.number(o, "acr", path),
    counts: {
      total: c.number(k, "total", cp),
      correct: c.number(k, "correct", cp),
      wrong: c.number(k, "wrong", cp),
      abstained: c.number(k, "abstained", cp),
    },
  };
}

function checkStage(c: Checker, v: unknown, path: string): StageSummary {
  const o = c.object(v, path);
  const name = c.string(o, "name", path);
  const kind = c.string(o, "kind", path);
  switch (kind) {
    case "train":
      return {
        name,
        kind,
        method: c.string(o, "method", path),
        sigma: c.number(o, "sigma", path),
        model: c.string(o, "model", path),
        dataset: c.string(o, "dataset", path),
        epochs: c.array(o, "epochs", path).map((e, i) => {
          const p = join(join(path, "epochs"), i);
          const r = c.object(e, p);
          return {
            epoch: c.number(r, "epoch", p),
            lr: c.number(r, "lr", p),
            classification: c.numberOrNull(r, "classification", p),
            robustness: c.numberOrNull(r, "robustness", p),
            ...(r.seconds === undefined ? {} : { seconds: c.number(r, "seconds", p) }),
          };
        }),
      };
    case "certify": {
      const mp = join(path, "modes");
      const m = c.object(o.modes, mp);
      const modes: Partial<Record<CertifyMode, CertifyMetrics>> = {};
      for (const key of Object.keys(m)) {
        if (key !== "hard" && key !== "soft") {
          c.fail(join(mp, key), `unknown mode (expected hard or soft)`);
        }
        modes[key] = checkMetrics(c, m[key], join(mp, key));
      }
      if (Object.keys(modes).length === 0) c.fail(mp, "expected hard, soft or both");
      return {
        name,
        kind,
        model: c.string(o, "model", path),
        sigma: c.number(o, "sigma", path),
        n: c.number(o, "n", path),
        modes,
      };
    }
    case "predict":
      return {
        name,
        kind,
        model: c.string(o, "model", path),
        sigma: c.number(o, "sigma", path),
        count: c.number(o, "count", path),
        correct: c.number(o, "correct", path),
        abstained: c.number(o, "abstained", path),
        accuracy: c.number(o, "accuracy", path),
        abstention_rate: c.number(o, "abstention_rate", path),
      };
    default:
      c.fail(
        join(path, "kind"),
        `unknown stage kind ${describe(kind)} (expected train, certify or predict)`,
      );
  }
}

/**
 * Checks a parsed summary and returns it typed; fields the report does not know are dropped.
 *
 * @param value the parsed JSON
 * @param file the file it came from, named in errors
 * @returns the summary
 * @throws SummaryError naming the file and the field at fault
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRunSummary } from "./summary.ts";
 * const s = parseRunSummary({ format: "macer-pipeline-summary", version: 1, name: "x", stages: [] }, "s.json");
 * assert.equal(s.name, "x");
 * assert.throws(() => parseRunSummary({ format: "other" }, "s.json"), /s\.json: format/);
 * ```
 */
export function parseRunSummary(value: unknown, file: string): RunSummary {
  const c = new Checker(file);
  const o = c.object(value, "");
  if (o.format !== SUMMARY_FORMAT) {
    c.fail("format", `expected ${JSON.stringify(SUMMARY_FORMAT)}, got ${describe(o.format)}`);
  }
  if (o.version !== SUMMARY_VERSION) {
    c.fail(
      "version",
      `expected ${SUMMARY_VERSION}, got ${describe(o.version)} (unsupported version)`,
    );
  }
  return {
    format: SUMMARY_FORMAT,
    version: SUMMARY_VERSION,
    name: c.string(o, "name", ""),
    stages: c.array(o, "stages", "").map((s, i) => checkStage(c, s, join("stages", i))),
  };
}

/**
 * Reads and checks `<dir>/summary.json`.
 *
 * @param dir a run directory
 * @returns the summary
 * @throws SummaryError naming the file when it is missing, not JSON or not a run summary
 */
export async function readRunSummary(dir: string): Promise<RunSummary> {
  const file = `${dir.replace(/[\\/]+$/, "")}/${SUMMARY_FILE}`;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new SummaryError(file, "no such file (is this a run directory?)");
    }
    throw new SummaryError(file, `cannot read: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new SummaryError(file, `not valid JSON: ${(err as Error).message}`);
  }
  const summary = parseRunSummary(value, file);
  await addEpochSeconds(dir, summary);
  return summary;
}

/** Epoch timings from the run's manifest.json, where summary.json has none. */
async function addEpochSeconds(dir: string, summary: RunSummary): Promise<void> {
  let manifest: { stages?: Record<string, { epoch_seconds?: unknown }> };
  try {
    manifest = JSON.parse(await Deno.readTextFile(`${dir.replace(/[\\/]+$/, "")}/manifest.json`));
  } catch {
    return; // no manifest (a summary written by other means): no timings to add
  }
  for (const st of summary.stages) {
    const seconds = manifest.stages?.[st.name]?.epoch_seconds;
    if (st.kind !== "train" || !Array.isArray(seconds)) continue;
    st.epochs.forEach((e, i) => {
      if (e.seconds === undefined && typeof seconds[i] === "number") e.seconds = seconds[i];
    });
  }
}
