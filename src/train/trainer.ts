/**
 * The training loop of the MACER authors' `main.py` and `macer.py`: for each
 * epoch, set the learning rate of the multi-step schedule, then one SGD step
 * per mini-batch on the MACER loss (n images x k noisy copies), on Cohen's
 * Gaussian-augmentation loss (one noisy copy per image), or on one of the
 * baselines: Consistency, SmoothAdv, SmoothMix (n images x m noisy copies; the
 * attacks reuse the step's noise).
 *
 * Epoch e (1-based) uses the data order of `BatchLoader.epoch(e)` and noise from
 * the Philox stream `noiseSeed` at the trainer's running offset; with the
 * weights, batch-norm state and momentum buffers, these are everything a
 * checkpoint needs to resume bit-identically.
 *
 * @module
 */
import { backward, Var } from "../../compute/autograd.ts";
import { Tensor, tidy } from "../../compute/tensor.ts";
import type { Batch, BatchLoader } from "../data/loader.ts";
import type { Module } from "../nn/module.ts";
import {
  loadCheckpoint,
  type LoadedCheckpoint,
  saveCheckpoint,
  type TrainingState,
} from "../io/checkpoint.ts";
import { gaussianLoss } from "./gaussian_loss.ts";
import { macerLossFromLogits, noisyCopies, roundUp4 } from "./macer_loss.ts";
import { readLossValues } from "./loss_values.ts";
import { MultiStepLR, SGD } from "./sgd.ts";
import { consistencyLossFromLogits } from "./consistency_loss.ts";
import { smoothAdvLoss, warmedEpsilon } from "./smoothadv_loss.ts";
import { smoothMixLoss, warmupFactor } from "./smoothmix_loss.ts";
import type { TrainMethodName } from "./settings.ts";
import * as ops from "../../compute/ops.ts";
import { Phi } from "../smoothing/normal.ts";

/** Which objective to train. */
export type TrainMethod = TrainMethodName;

/** Settings of the baselines (names of their authors' scripts in brackets). */
export interface BaselineConfig {
  /** Noisy copies per image [num_noise_vec]. */
  numNoiseVec: number;
  /** Consistency: entropy weight; SmoothMix: mixup weight [eta]. */
  eta: number;
  /** SmoothAdv: attack radius, pixel units [epsilon / 256]. */
  epsilon: number;
  /** Attack steps [num_steps]. */
  numSteps: number;
  /** Warm-up epochs of epsilon (SmoothAdv) or of the mixup weight and maxnorm_s (SmoothMix). */
  warmup: number;
  /** SmoothAdv: train on all m copies [train_multi_noise]. */
  trainMultiNoise: boolean;
  /** SmoothAdv: the attack's backprop-free direction [no_grad_attack]. */
  noGradAttack?: boolean;
  /** SmoothAdv: PGD or DDN [attack]. */
  attack?: "PGD" | "DDN";
  /** SmoothAdv with DDN [gamma_ddn]. */
  gammaDdn?: number;
  /** SmoothMix: step size [alpha]. */
  alpha: number;
  /** SmoothMix [mix_step]. */
  mixStep: number;
  /** SmoothMix [maxnorm] (undefined: none). */
  maxnorm?: number;
  /** SmoothMix [maxnorm_s] (undefined: alpha * mix_step). */
  maxnormS?: number;
}

const BASELINE_DEFAULTS: BaselineConfig = {
  numNoiseVec: 1,
  eta: 0,
  epsilon: 0.25,
  numSteps: 1,
  warmup: 1,
  trainMultiNoise: false,
  alpha: 1,
  mixStep: 0,
};

/** Settings of a training run (reference defaults in brackets). */
export interface TrainerConfig {
  /** "macer" [default] or "gaussian" (Cohen et al.). */
  method: TrainMethod;
  /** Noise standard deviation [0.25]. */
  sigma: number;
  /** Noisy copies per image for MACER [16]. */
  gaussNum: number;
  /** Weight of the robustness loss [12]. */
  lbd: number;
  /** Hinge factor [8]. */
  gamma: number;
  /** Inverse softmax temperature of the robustness loss [16]. */
  beta: number;
  /** Initial learning rate [0.01]. */
  lr: number;
  /** SGD momentum [0.9]. */
  momentum?: number;
  /** Weight decay added to the gradient [5e-4]. */
  weightDecay?: number;
  /** Epochs at which the learning rate is multiplied by `lrGamma` [200, 400]. */
  milestones?: number[];
  /** Learning-rate decay [0.1]. */
  lrGamma?: number;
  /** Philox key of the training noise. */
  noiseSeed: number;
  /** Seed of the data order (kept in checkpoints; the loader must use it). */
  dataSeed: number;
  /** Settings of Consistency, SmoothAdv and SmoothMix. */
  baseline?: Partial<BaselineConfig>;
}

/** Progress within an epoch, reported after every step. */
export interface StepProgress {
  epoch: number;
  /** Steps done in this epoch. */
  step: number;
  /** Steps in this epoch. */
  steps: number;
  /** Images seen in this epoch. */
  images: number;
  /** Mean classification loss per image so far. */
  classification: number;
  /** Mean robustness loss per image so far. */
  robustness: number;
  /** Seconds since the epoch began. */
  seconds: number;
}

/** What one step did. */
export interface StepResult {
  /** False when a loss was NaN or infinite (no update was made). */
  finite: boolean;
  /** Classification loss summed over the batch. */
  classification: number;
  /**
   * Robustness loss summed over the kept images; for Consistency and SmoothMix their
   * regularizer (the consistency term, the weighted mixup term) summed over the batch; 0
   * for Gaussian augmentation and SmoothAdv.
   */
  robustness: number;
  /** Images that entered the robustness loss (MACER only; 0 otherwise). */
  kept: number;
  /** Images in the batch. */
  n: number;
}

/** What one epoch did. */
export interface EpochResult {
  epoch: number;
  /** Classification loss per image, as `macer.py` prints it. */
  classification: number;
  /** Robustness loss per image (0 for Gaussian augmentation). */
  robustness: number;
  /** Learning rate used. */
  lr: number;
  images: number;
  steps: number;
  seconds: number;
}

/** The loss stopped being finite; the parameters are those before the bad step. */
export class TrainingDivergedError extends Error {
  readonly epoch: number;
  readonly step: number;
  constructor(epoch: number, step: number, what: string) {
    super(`The ${what} became NaN or infinite at epoch ${epoch}, step ${step}`);
    this.name = "TrainingDivergedError";
    this.epoch = epoch;
    this.step = step;
  }
}

/**
 * A model, its optimizer and schedule, and the random state of a run.
 */
export class Trainer {
  readonly model: Module;
  readonly config: Required<TrainerConfig>;
  readonly optimizer: SGD;
  readonly schedule: MultiStepLR;
  /** Epochs completed. */
  epoch = 0;
  /** Next unused position of the training noise stream. */
  noiseOffset = 0;

  constructor(model: Module, config: TrainerConfig) {
    this.model = model;
    this.config = {
      momentum: 0.9,
      weightDecay: 5e-4,
      milestones: [200, 400],
      lrGamma: 0.1,
      ...config,
      baseline: { ...BASELINE_DEFAULTS, ...config.baseline },
    };
    const c = this.config;
    if (!Number.isInteger(c.gaussNum) || c.gaussNum < 1) {
      throw new RangeError(`gaussNum must be an integer >= 1, got ${c.gaussNum}`);
    }
    const b = c.baseline as BaselineConfig;
    for (
      const [name, v, min] of [["numNoiseVec", b.numNoiseVec, 1], ["numSteps", b.numSteps, 1], [
        "warmup",
        b.warmup,
        1,
      ], ["mixStep", b.mixStep, 0]] as const
    ) {
      if (!Number.isInteger(v) || v < min) {
        throw new RangeError(`baseline.${name} must be an integer >= ${min}, got ${v}`);
      }
    }
    this.optimizer = new SGD(model.parameters(), {
      lr: c.lr,
      momentum: c.momentum,
      weightDecay: c.weightDecay,
    });
    this.schedule = new MultiStepLR(c.lr, c.milestones, c.lrGamma);
  }

  /**
   * Trains epoch `this.epoch + 1` over the loader's batches for that epoch.
   *
   * @param loader mini-batches of the training set
   * @param shape image shape [C, H, W]
   * @param onStep called after every step (for progress display)
   * @returns the epoch's mean losses, learning rate and time
   * @throws {TrainingDivergedError} when a loss is NaN or infinite (no step is taken with it)
   */
  trainEpoch(
    loader: BatchLoader,
    shape: readonly number[],
    onStep?: (p: StepProgress) => void,
  ): EpochResult {
    const epoch = this.epoch + 1;
    // main.py calls scheduler.step() before each epoch: epoch e trains at lrAt(e).
    const lr = this.schedule.lrAt(epoch);
    this.optimizer.lr = lr;
    const t0 = performance.now();
    let cl = 0, rl = 0, images = 0, step = 0;
    const steps = loader.batchesPerEpoch;
    for (const batch of loader.epoch(epoch)) {
      step++;
      const out = this.step(batch, shape);
      if (!out.finite) {
        const what = Number.isFinite(out.classification)
          ? "robustness loss"
          : "classification loss";
        throw new TrainingDivergedError(epoch, step, what);
      }
      cl += out.classification;
      rl += out.robustness;
      images += out.n;
      onStep?.({
        epoch,
        step,
        steps,
        images,
        classification: cl / images,
        robustness: rl / images,
        seconds: (performance.now() - t0) / 1000,
      });
    }
    this.epoch = epoch;
    return {
      epoch,
      classification: images ? cl / images : 0,
      robustness: images ? rl / images : 0,
      lr,
      images,
      steps: step,
      seconds: (performance.now() - t0) / 1000,
    };
  }

  /**
   * One SGD step on one mini-batch at the optimizer's current learning rate:
   * n images x k noisy copies (MACER) or one noisy copy each (Gaussian), drawn
   * from the training noise stream at `noiseOffset`, which then advances. A
   * loss that is not finite takes no step and leaves the stream where it was.
   *
   * @param batch images in [0, 1] and labels
   * @param shape image shape [C, H, W]
   * @param onGradients called after the backward pass, before the update
   *   (for inspecting gradients; the parameters still hold their old values)
   * @returns the step's summed losses and how many images the robustness term kept
   */
  step(
    batch: Batch,
    shape: readonly number[],
    onGradients?: (model: Module) => void,
  ): StepResult {
    const c = this.config;
    const n = batch.size;
    const noise = { seed: c.noiseSeed, offset: this.noiseOffset };
    let drawn = 0;
    this.model.train();
    const out = tidy((): StepResult => {
      const x = Tensor.fromF32(batch.x, [n, ...shape]);
      let r: { loss: Var; parts: Tensor };
      [r, drawn] = this.#loss(x, batch.y, noise);
      // The step's one read from the device.
      const { loss: total, classification, robustness, kept } = readLossValues(r.loss, r.parts);
      const finite = Number.isFinite(total) && Number.isFinite(classification) &&
        Number.isFinite(robustness);
      if (finite) {
        backward(r.loss);
        onGradients?.(this.model);
        this.optimizer.step();
        this.model.zeroGrad();
      }
      return { finite, classification, robustness, kept, n };
    });
    if (out.finite) this.noiseOffset += drawn;
    return out;
  }

  /** The step's loss and how many numbers of the noise stream it drew. */
  #loss(
    x: Tensor,
    y: Int32Array,
    noise: { seed: number; offset: number },
  ): [{ loss: Var; parts: Tensor }, number] {
    const c = this.config;
    const b = c.baseline as BaselineConfig;
    const epoch = this.epoch + 1;
    if (c.method === "macer") {
      const k = c.gaussNum;
      const logits = this.model.forward(Var.constant(noisyCopies(x, k, c.sigma, noise)));
      const r = macerLossFromLogits(logits, y, {
        sigma: c.sigma,
        k,
        lbd: c.lbd,
        gamma: c.gamma,
        beta: c.beta,
      });
      return [r, roundUp4(x.size * k)];
    }
    if (c.method === "gaussian") {
      return [gaussianLoss(this.model, x, y, c.sigma, noise), roundUp4(x.size)];
    }
    const m = b.numNoiseVec;
    const draw = roundUp4(x.size * m);
    if (c.method === "consistency") {
      const logits = this.model.forward(Var.constant(noisyCopies(x, m, c.sigma, noise)));
      return [consistencyLossFromLogits(logits, y, { m, lbd: c.lbd, eta: b.eta }), draw];
    }
    const eps = ops.affine(
      ops.randn([x.shape[0] * m, ...x.shape.slice(1)], noise.seed, noise.offset),
      c.sigma,
    );
    if (c.method === "smoothadv") {
      const r = smoothAdvLoss(this.model, x, y, eps, {
        m,
        steps: b.numSteps,
        epsilon: warmedEpsilon(b.epsilon, epoch, b.warmup),
        multiNoise: b.trainMultiNoise,
        noGrad: b.noGradAttack,
        attack: b.attack,
        gammaDdn: b.gammaDdn,
      });
      return [r, draw];
    }
    // SmoothMix: lam = U(0, 1) / 2 per image, from the normals after the noise.
    const n = x.shape[0];
    const z = ops.randn([n], noise.seed, noise.offset + draw).toF32();
    const lam = Float32Array.from(z, (v) => Phi(v) / 2);
    const w = warmupFactor(epoch, b.warmup);
    const r = smoothMixLoss(this.model, x, y, eps, lam, {
      m,
      steps: b.numSteps,
      alpha: b.alpha,
      mixStep: b.mixStep,
      maxnorm: b.maxnorm,
      maxnormS: w * (b.maxnormS ?? b.alpha * b.mixStep),
      eta: b.eta,
      warmupFactor: w,
    });
    return [r, draw + roundUp4(n)];
  }

  /** The state a checkpoint stores beside the weights. */
  state(config?: Record<string, unknown>): TrainingState {
    return {
      epoch: this.epoch,
      noiseSeed: this.config.noiseSeed,
      noiseOffset: this.noiseOffset,
      dataSeed: this.config.dataSeed,
      baseLr: this.config.lr,
      milestones: [...this.config.milestones],
      lrGamma: this.config.lrGamma,
      lr: this.schedule.lrAt(Math.max(this.epoch, 1)),
      config,
    };
  }

  /** Writes weights, momentum buffers and state to `path` atomically. */
  async save(path: string, config?: Record<string, unknown>): Promise<void> {
    await saveCheckpoint(path, this.model, this.state(config), this.optimizer);
  }

  /**
   * Loads weights, momentum buffers, the epoch and the random state (noise
   * seed and position, data seed) from a checkpoint, so training continues
   * exactly where it stopped. A bare state dict (no metadata) keeps this
   * trainer's seeds and starts at epoch 0.
   */
  async load(path: string): Promise<LoadedCheckpoint> {
    const loaded = await loadCheckpoint(path, this.model, this.optimizer);
    this.epoch = loaded.state.epoch;
    this.noiseOffset = loaded.state.noiseOffset;
    if (loaded.hasMetadata) {
      this.config.noiseSeed = loaded.state.noiseSeed;
      this.config.dataSeed = loaded.state.dataSeed;
    }
    return loaded;
  }

  /** Frees the optimizer's buffers. */
  dispose(): void {
    this.optimizer.dispose();
  }
}
