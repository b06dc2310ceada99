/**
 * Seeded mini-batches: per-epoch shuffling and, for CIFAR-10 and SVHN,
 * random-crop and flip augmentation.
 *
 * Epoch e draws its order from `seedrandom("<seed>:<e>:order")` and its
 * augmentation from `seedrandom("<seed>:<e>:augment")`, so any epoch can be
 * reproduced on its own (a resumed run sees the same batches), and the same
 * seed always gives the same batches in the same order.
 *
 * @module
 */
import seedrandom from "seedrandom";
import { cropFlipInto, drawCropFlip, type Rng } from "./augment.ts";
import type { DatasetName, ImageDataset } from "./types.ts";

/** One mini-batch. */
export interface Batch {
  /** `size * C * H * W` floats in [0, 1], NCHW, not normalised. */
  x: Float32Array;
  /** `size` labels. */
  y: Int32Array;
  /** Number of images in this batch (the last one may be smaller). */
  size: number;
  /** Dataset index of each image. */
  indices: Int32Array;
}

/** Options of `BatchLoader`. */
export interface BatchLoaderOptions {
  batchSize: number;
  /** Shuffle the order each epoch. */
  shuffle: boolean;
  /** Random crop + flip (CIFAR-10 and SVHN only; MNIST-like sets are left as they are). */
  augment: boolean;
  /** Seed of shuffling and augmentation. */
  seed: number;
  /** Drop a last batch smaller than `batchSize`. Default false. */
  dropLast?: boolean;
  /**
   * The order of dataset indices in each epoch, replacing the seeded shuffle
   * (to replay the order another program used). Each must be a permutation.
   */
  orders?: (epoch: number) => Int32Array;
}

/** Datasets that get crop + flip augmentation (MACER does none on MNIST). */
const AUGMENTED: ReadonlySet<DatasetName> = new Set(["cifar10", "svhn"]);

/** A seeded generator of `[0, 1)` numbers. */
export function seededRng(key: string): Rng {
  const r = seedrandom(key);
  return () => r();
}

/**
 * A Fisher-Yates permutation of 0..n-1 drawn from `rng`.
 *
 * @param n length
 * @param rng uniform source
 */
export function permutation(n: number, rng: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/**
 * Splits a dataset into mini-batches, epoch by epoch.
 *
 * @example
 * ```ts
 * import { BatchLoader, type ImageDataset } from "./mod.ts";
 * const ds: ImageDataset = {
 *   name: "mnist", split: "train", count: 5, channels: 1, height: 2, width: 2,
 *   classes: 10, images: new Uint8Array(20).fill(255), labels: new Uint8Array(5),
 * };
 * const loader = new BatchLoader(ds, { batchSize: 2, shuffle: true, augment: false, seed: 1 });
 * const sizes = [...loader.epoch(0)].map((b) => b.size);
 * if (sizes.join() !== "2,2,1" || loader.batchesPerEpoch !== 3) throw new Error("unexpected");
 * ```
 */
export class BatchLoader {
  /** Batches each epoch yields. */
  readonly batchesPerEpoch: number;
  readonly #ds: ImageDataset;
  readonly #opts: Required<Omit<BatchLoaderOptions, "orders">>;
  readonly #orders?: (epoch: number) => Int32Array;
  readonly #augment: boolean;

  /**
   * @param ds the dataset
   * @param opts batch size, shuffling, augmentation, seed, dropLast
   * @throws RangeError on a batch size that is not a positive integer
   * @throws TypeError on a seed that is not a finite number
   */
  constructor(ds: ImageDataset, opts: BatchLoaderOptions) {
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) {
      throw new RangeError(`Batch size must be a positive integer, got ${opts.batchSize}`);
    }
    if (typeof opts.seed !== "number" || !Number.isFinite(opts.seed)) {
      throw new TypeError(`Seed must be a finite number, got ${opts.seed}`);
    }
    this.#ds = ds;
    this.#opts = { dropLast: false, ...opts };
    this.#orders = opts.orders;
    this.#augment = opts.augment && AUGMENTED.has(ds.name);
    this.batchesPerEpoch = this.#opts.dropLast
      ? Math.floor(ds.count / opts.batchSize)
      : Math.ceil(ds.count / opts.batchSize);
  }

  /** The order of dataset indices in epoch `epoch`. */
  order(epoch: number): Int32Array {
    const n = this.#ds.count;
    if (this.#orders) {
      const given = this.#orders(epoch);
      const seen = new Uint8Array(n);
      for (const i of given) if (i >= 0 && i < n) seen[i] = 1;
      if (given.length !== n || !seen.every((s) => s === 1)) {
        throw new RangeError(`The order of epoch ${epoch} is not a permutation of 0..${n - 1}`);
      }
      return given;
    }
    if (!this.#opts.shuffle) return Int32Array.from({ length: n }, (_, i) => i);
    return permutation(n, seededRng(`${this.#opts.seed}:${epoch}:order`));
  }

  /**
   * Yields the batches of one epoch.
   *
   * @param epoch epoch number (any integer; it seeds the order and augmentation)
   */
  *epoch(epoch: number): Generator<Batch> {
    if (!Number.isInteger(epoch)) throw new RangeError(`Epoch must be an integer, got ${epoch}`);
    const ds = this.#ds;
    const { batchSize } = this.#opts;
    const order = this.order(epoch);
    const rng = this.#augment ? seededRng(`${this.#opts.seed}:${epoch}:augment`) : undefined;
    const size = ds.channels * ds.height * ds.width;
    for (let b = 0; b < this.batchesPerEpoch; b++) {
      const from = b * batchSize;
      const n = Math.min(batchSize, ds.count - from);
      const x = new Float32Array(n * size);
      const y = new Int32Array(n);
      const indices = order.slice(from, from + n);
      for (let i = 0; i < n; i++) {
        const idx = indices[i];
        y[i] = ds.labels[idx];
        if (rng) {
          cropFlipInto(
            ds.images,
            idx * size,
            x,
            i * size,
            ds.channels,
            ds.height,
            ds.width,
            drawCropFlip(rng),
          );
        } else {
          const src = idx * size;
          const dst = i * size;
          for (let k = 0; k < size; k++) x[dst + k] = ds.images[src + k] / 255;
        }
      }
      yield { x, y, size: n, indices };
    }
  }
}
