/**
 * Every hyperparameter of a training run, its default and its range, in one
 * place: the `macer` command, the pipeline's `train` stages and the README's
 * reference all read this description. Names follow the MACER authors'
 * `main.py` flags (`gauss_num`, `lbd`, ...).
 *
 * @module
 */
import { InputError } from "../errors.ts";
import { check, formatProblem, type ObjectSpec, type Problem } from "../spec/spec.ts";

/** The settings of one training run. */
export interface TrainSettings {
  method: "macer" | "gaussian";
  sigma: number;
  gauss_num: number;
  lbd: number;
  gamma: number;
  beta: number;
  epochs: number;
  batch_size: number;
  lr: number;
  milestones: number[];
  lr_gamma: number;
  momentum: number;
  weight_decay: number;
  augment: boolean;
  seed: number;
  num_train: number;
}

/** The description of `TrainSettings` (defaults: the MACER paper's CIFAR-10 settings). */
export const TRAIN_FIELDS: ObjectSpec["fields"] = {
  method: {
    type: "string",
    enum: ["macer", "gaussian"],
    default: "macer",
    doc: "training objective: MACER, or Gaussian noise augmentation (Cohen et al.)",
  },
  sigma: { type: "number", above: 0, default: 0.25, doc: "noise standard deviation" },
  gauss_num: {
    type: "number",
    integer: true,
    min: 1,
    default: 16,
    doc: "k, noisy copies of each image in the MACER loss",
  },
  lbd: { type: "number", min: 0, default: 12, doc: "lambda, weight of the robustness loss" },
  gamma: { type: "number", min: 0, default: 8, doc: "hinge on the quantile gap" },
  beta: { type: "number", above: 0, default: 16, doc: "inverse softmax temperature" },
  epochs: { type: "number", integer: true, min: 0, default: 440, doc: "training epochs" },
  batch_size: { type: "number", integer: true, min: 1, default: 64, doc: "images per step" },
  lr: { type: "number", above: 0, default: 0.01, doc: "initial learning rate" },
  milestones: {
    type: "array",
    items: { type: "number", integer: true, min: 1, doc: "an epoch" },
    default: [200, 400],
    doc: "epochs from which the learning rate is multiplied by lr_gamma",
  },
  lr_gamma: { type: "number", above: 0, default: 0.1, doc: "learning-rate decay" },
  momentum: { type: "number", min: 0, below: 1, default: 0.9, doc: "SGD momentum" },
  weight_decay: {
    type: "number",
    min: 0,
    default: 5e-4,
    doc: "weight decay (added to the gradient)",
  },
  augment: {
    type: "boolean",
    default: true,
    doc: "random crop and flip (CIFAR-10 and SVHN only, as the authors)",
  },
  seed: {
    type: "number",
    integer: true,
    min: 0,
    max: 2 ** 50,
    default: 0,
    doc: "seed of initialisation, data order and noise",
  },
  num_train: {
    type: "number",
    integer: true,
    min: 0,
    default: 0,
    doc: "train on the first N training images only (0: all)",
  },
};

/** The description as an object spec. */
export const TRAIN_SPEC: ObjectSpec = {
  type: "object",
  doc: "training hyperparameters",
  fields: TRAIN_FIELDS,
};

/**
 * Complete, checked training settings from a partial set.
 *
 * @param given the settings that differ from the defaults
 * @param where prefix of the field names in messages (e.g. `stages[0]`)
 * @throws {InputError} naming every field that is out of range or of the wrong type
 */
export function trainSettings(given: Partial<TrainSettings>, where = ""): TrainSettings {
  const problems: Problem[] = [];
  const s = check(given, TRAIN_SPEC, where, problems) as TrainSettings;
  if (problems.length > 0) {
    throw new InputError(problems.map(formatProblem).join("\n"));
  }
  return s;
}
