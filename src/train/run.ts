/**
 * A training run as a library: the epochs of `settings` over a training set,
 * checkpoints written atomically where asked, a checkpoint to continue from,
 * and a hook after each epoch (where the `macer` command certifies, as the
 * authors' `main.py` does, and a pipeline logs). A loss that stops being
 * finite ends the run with the last good checkpoint named.
 *
 * @module
 */
import { BatchLoader } from "../data/loader.ts";
import type { ImageDataset } from "../data/types.ts";
import type { LoadedCheckpoint } from "../io/checkpoint.ts";
import type { Module } from "../nn/module.ts";
import type { TrainSettings } from "./settings.ts";
import { firstImages } from "./subset.ts";
import { type EpochResult, type StepProgress, Trainer, TrainingDivergedError } from "./trainer.ts";

/** How a run is driven. */
export interface TrainRunOptions {
  settings: TrainSettings;
  /** The network, freshly built (or with weights loaded by the caller). */
  model: Module;
  trainSet: ImageDataset;
  /** Folder of `<epoch>.safetensors` checkpoints; null writes none. */
  ckptdir: string | null;
  /** Whether to write a checkpoint after `epoch` (the last epoch always gets one). */
  checkpointAt?: (epoch: number) => boolean;
  /** A checkpoint to continue from (weights, momentum, epoch, noise and data state). */
  resume?: string | null;
  /** Called once the resume checkpoint is loaded, before any training. */
  onResume?: (loaded: LoadedCheckpoint, trainer: Trainer) => void;
  /** Called before each epoch. */
  onEpochStart?: (epoch: number) => void;
  /** Called after every step. */
  onStep?: (p: StepProgress) => void;
  /** Called after every epoch, before its checkpoint is written. */
  onEpoch?: (r: EpochResult, trainer: Trainer) => void | Promise<void>;
  /** Called after each checkpoint is written. */
  onSave?: (path: string, epoch: number) => void;
  /** Recorded in each checkpoint's metadata (dataset, model, hyperparameters). */
  record?: Record<string, unknown>;
}

/** What a finished run did. */
export interface TrainRunResult {
  /** Epochs completed, counting those of the resumed checkpoint. */
  epoch: number;
  /** Epochs trained by this call. */
  epochs: EpochResult[];
  /** The newest checkpoint, or null when none was written or resumed. */
  checkpoint: string | null;
}

/** The loss diverged; carries the last good checkpoint. */
export class TrainingStoppedError extends Error {
  readonly divergence: TrainingDivergedError;
  /** The newest checkpoint before the divergence (null: none). */
  readonly checkpoint: string | null;
  /** Its epoch (-1: none). */
  readonly checkpointEpoch: number;
  constructor(cause: TrainingDivergedError, checkpoint: string | null, checkpointEpoch: number) {
    super(
      `${cause.message}; training stopped. ` +
        (checkpoint === null
          ? "No checkpoint was written in this run."
          : `The last good checkpoint is ${checkpoint} (epoch ${checkpointEpoch}).`),
    );
    this.name = "TrainingStoppedError";
    this.divergence = cause;
    this.checkpoint = checkpoint;
    this.checkpointEpoch = checkpointEpoch;
  }
}

/** The trainer of a run's settings (noise key `2 * seed`, data order from `seed`). */
export function trainerFor(model: Module, s: TrainSettings): Trainer {
  return new Trainer(model, {
    method: s.method,
    sigma: s.sigma,
    gaussNum: s.gauss_num,
    lbd: s.lbd,
    gamma: s.gamma,
    beta: s.beta,
    lr: s.lr,
    momentum: s.momentum,
    weightDecay: s.weight_decay,
    milestones: s.milestones,
    lrGamma: s.lr_gamma,
    noiseSeed: 2 * s.seed,
    dataSeed: s.seed,
    baseline: {
      numNoiseVec: s.num_noise_vec,
      eta: s.eta,
      epsilon: s.epsilon,
      numSteps: s.num_steps,
      warmup: s.warmup,
      trainMultiNoise: s.train_multi_noise,
      noGradAttack: s.no_grad_attack,
      attack: s.attack,
      gammaDdn: s.gamma_ddn,
      alpha: s.alpha,
      mixStep: s.mix_step,
      maxnorm: s.maxnorm,
      maxnormS: s.maxnorm_s,
    },
  });
}

/**
 * Trains until `settings.epochs` epochs are done.
 *
 * @throws {TrainingStoppedError} when a loss becomes NaN or infinite
 */
export async function runTraining(o: TrainRunOptions): Promise<TrainRunResult> {
  const s = o.settings;
  const trainSet = s.num_train > 0 ? firstImages(o.trainSet, s.num_train) : o.trainSet;
  const trainer = trainerFor(o.model, s);
  try {
    let checkpoint: string | null = null, savedEpoch = -1;
    if (o.resume) {
      const loaded = await trainer.load(o.resume);
      checkpoint = o.resume;
      savedEpoch = trainer.epoch;
      o.onResume?.(loaded, trainer);
    }
    // Built after load(): a checkpoint brings its own data seed.
    const loader = new BatchLoader(trainSet, {
      batchSize: s.batch_size,
      shuffle: true,
      augment: s.augment,
      seed: trainer.config.dataSeed,
    });
    if (o.ckptdir !== null) await Deno.mkdir(o.ckptdir, { recursive: true });
    const shape = [trainSet.channels, trainSet.height, trainSet.width];
    const start = trainer.epoch;
    const epochs: EpochResult[] = [];
    for (let epoch = start + 1; epoch <= s.epochs; epoch++) {
      let r: EpochResult;
      o.onEpochStart?.(epoch);
      try {
        r = trainer.trainEpoch(loader, shape, o.onStep);
      } catch (e) {
        if (e instanceof TrainingDivergedError) {
          throw new TrainingStoppedError(e, checkpoint, savedEpoch);
        }
        throw e;
      }
      epochs.push(r);
      await o.onEpoch?.(r, trainer);
      if (o.ckptdir !== null && (epoch === s.epochs || o.checkpointAt?.(epoch))) {
        checkpoint = `${o.ckptdir}/${epoch}.safetensors`;
        await trainer.save(checkpoint, o.record);
        savedEpoch = epoch;
        o.onSave?.(checkpoint, epoch);
      }
    }
    return { epoch: trainer.epoch, epochs, checkpoint };
  } finally {
    trainer.dispose();
  }
}
