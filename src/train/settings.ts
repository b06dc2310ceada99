/**
 * Every hyperparameter of a training run, its default and its range, in one
 * place: the `macer` command, the pipeline's `train` stages and the README's
 * reference all read this description. Names follow the MACER authors'
 * `main.py` flags (`gauss_num`, `lbd`, ...) and, for the baselines, their
 * authors' scripts (`num_noise_vec`, `epsilon`, `num_steps`, `mix_step`, ...).
 *
 * Each method has its own fields. Fields that several methods share with
 * different defaults (`lbd`, `eta`, `num_noise_vec`, `num_steps`, `warmup`)
 * have no default in the description: {@linkcode completeMethodFields} fills
 * in the method's. Setting a field that the chosen method does not use is an
 * error (it would otherwise be silently ignored).
 *
 * @module
 */
import { InputError } from "../errors.ts";
import { check, formatProblem, type ObjectSpec, type Problem } from "../spec/spec.ts";

/** The settings of one training run. */
export interface TrainSettings {
  method: TrainMethodName;
  sigma: number;
  gauss_num: number;
  lbd: number;
  gamma: number;
  beta: number;
  /** m, noisy copies of each image (SmoothAdv, Consistency, SmoothMix). */
  num_noise_vec: number;
  eta: number;
  attack: "PGD" | "DDN";
  gamma_ddn: number;
  epsilon: number;
  num_steps: number;
  warmup: number;
  train_multi_noise: boolean;
  no_grad_attack: boolean;
  alpha: number;
  mix_step: number;
  /** SmoothMix's bound on the adversarial point (absent: none). */
  maxnorm?: number;
  /** SmoothMix's bound on the mixing start point (absent: alpha * mix_step). */
  maxnorm_s?: number;
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

/** The training objectives. */
export const TRAIN_METHODS = [
  "macer",
  "gaussian",
  "consistency",
  "smoothadv",
  "smoothmix",
] as const;
/** A training objective. */
export type TrainMethodName = typeof TRAIN_METHODS[number];

/** The fields each method reads beyond the common ones (sigma, schedule, data). */
export const METHOD_FIELDS: Record<TrainMethodName, readonly string[]> = {
  macer: ["gauss_num", "lbd", "gamma", "beta"],
  gaussian: [],
  consistency: ["num_noise_vec", "lbd", "eta"],
  smoothadv: [
    "attack",
    "epsilon",
    "num_steps",
    "warmup",
    "num_noise_vec",
    "train_multi_noise",
    "no_grad_attack",
    "gamma_ddn",
  ],
  smoothmix: [
    "num_noise_vec",
    "num_steps",
    "alpha",
    "mix_step",
    "eta",
    "maxnorm",
    "maxnorm_s",
    "warmup",
  ],
};

/** Defaults of the shared fields, per method (their authors' script defaults). */
const METHOD_DEFAULTS: Record<TrainMethodName, Record<string, number>> = {
  macer: { lbd: 12 },
  gaussian: {},
  consistency: { num_noise_vec: 2, lbd: 10, eta: 0.5 },
  smoothadv: { num_steps: 10, warmup: 1, num_noise_vec: 1 },
  smoothmix: { num_noise_vec: 2, num_steps: 8, eta: 1, warmup: 10 },
};
/** Values of the shared fields a method does not use (kept in records, never read). */
const UNUSED: Record<string, number> = {
  lbd: 0,
  eta: 0,
  num_noise_vec: 1,
  num_steps: 1,
  warmup: 1,
};

/** The description of `TrainSettings` (defaults: the MACER paper's CIFAR-10 settings). */
export const TRAIN_FIELDS: ObjectSpec["fields"] = {
  method: {
    type: "string",
    enum: TRAIN_METHODS,
    default: "macer",
    doc: "training objective: MACER; Gaussian noise augmentation (Cohen et al.); " +
      "Consistency regularization (Jeong and Shin); SmoothAdv (Salman et al.); SmoothMix " +
      "(Jeong et al.)",
  },
  sigma: { type: "number", above: 0, default: 0.25, doc: "noise standard deviation" },
  gauss_num: {
    type: "number",
    integer: true,
    min: 1,
    default: 16,
    doc: "k, noisy copies of each image in the MACER loss",
  },
  lbd: {
    type: "number",
    min: 0,
    doc: "lambda, weight of the robustness loss (macer, default 12) or of the KL term " +
      "(consistency, default 10)",
  },
  gamma: { type: "number", min: 0, default: 8, doc: "hinge on the quantile gap" },
  beta: { type: "number", above: 0, default: 16, doc: "inverse softmax temperature" },
  num_noise_vec: {
    type: "number",
    integer: true,
    min: 1,
    doc: "m, noisy copies of each image (consistency, default 2; smoothadv, default 1; " +
      "smoothmix, default 2)",
  },
  eta: {
    type: "number",
    min: 0,
    doc: "weight of the entropy term (consistency, default 0.5) or of the mixup loss " +
      "(smoothmix, default 1)",
  },
  attack: {
    type: "string",
    enum: ["PGD", "DDN"],
    default: "PGD",
    doc: "smoothadv: the attack on the smoothed classifier (L2 PGD, or DDN)",
  },
  gamma_ddn: {
    type: "number",
    above: 0,
    below: 1,
    default: 0.05,
    doc: "smoothadv with DDN: the norm's change per step (their --gamma-DDN)",
  },
  epsilon: {
    type: "number",
    min: 0,
    default: 0.25,
    doc: "smoothadv: L2 radius of the attack in pixel units (the authors' --epsilon / 256)",
  },
  num_steps: {
    type: "number",
    integer: true,
    min: 1,
    doc: "attack steps (smoothadv, default 10; smoothmix, default 8)",
  },
  warmup: {
    type: "number",
    integer: true,
    min: 1,
    doc: "epochs over which epsilon (smoothadv, default 1) or the mixup weight and " +
      "maxnorm_s (smoothmix, default 10) rise linearly to their values",
  },
  train_multi_noise: {
    type: "boolean",
    default: false,
    doc: "smoothadv: train on all m noisy copies of each adversarial image (else the first)",
  },
  no_grad_attack: {
    type: "boolean",
    default: false,
    doc: "smoothadv: attack along the mean of -p_y(x + noise) * noise over the m copies " +
      "(no backpropagation; only with num_noise_vec > 1, as their code)",
  },
  alpha: {
    type: "number",
    min: 0,
    default: 1,
    doc: "smoothmix: step size of the attack",
  },
  mix_step: {
    type: "number",
    integer: true,
    min: 0,
    default: 0,
    doc: "smoothmix: the attack step whose point starts the mixup (1: the one-step adversary)",
  },
  maxnorm: {
    type: "number",
    above: 0,
    doc: "smoothmix: L2 bound on the adversarial point (default: none)",
  },
  maxnorm_s: {
    type: "number",
    min: 0,
    doc: "smoothmix: L2 bound on the mixup's start point (default: alpha * mix_step)",
  },
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
  if (problems.length === 0) {
    completeMethodFields(given, s as unknown as Record<string, unknown>, where, problems);
  }
  if (problems.length > 0) {
    throw new InputError(problems.map(formatProblem).join("\n"));
  }
  return s;
}

/** Fields that only some methods read. */
const SPECIFIC = new Set(Object.values(METHOD_FIELDS).flat());

/**
 * Refuses the fields, set in `given`, that `checked.method` does not use, and fills in
 * the method's defaults of the shared fields (in place).
 *
 * @param given the settings as written (which fields were set)
 * @param checked the same after `check` (defaults of the description filled in)
 * @param where prefix of the field names in messages
 * @param problems collects the problems
 */
export function completeMethodFields(
  given: Record<string, unknown>,
  checked: Record<string, unknown>,
  where: string,
  problems: Problem[],
): void {
  const method = checked.method as TrainMethodName;
  const own = METHOD_FIELDS[method];
  const at = (k: string) => (where ? `${where}.${k}` : k);
  for (const key of Object.keys(given)) {
    if (SPECIFIC.has(key) && !own.includes(key) && given[key] !== undefined) {
      const users = TRAIN_METHODS.filter((m) => METHOD_FIELDS[m].includes(key));
      problems.push({
        path: at(key),
        message: `is not used by method "${method}" (only by ${users.join(", ")})`,
      });
    }
  }
  for (const [key, value] of Object.entries({ ...UNUSED, ...METHOD_DEFAULTS[method] })) {
    if (checked[key] === undefined) checked[key] = value;
  }
  if (method === "smoothmix" && checked.mix_step as number >= (checked.num_steps as number)) {
    problems.push({
      path: at("mix_step"),
      message: `must be below num_steps (${checked.num_steps}), got ${checked.mix_step}`,
    });
  }
}
