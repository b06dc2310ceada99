/**
 * A {@linkcode NoiseSampler} backed by the compute library: each batch of noisy
 * copies of one image is drawn, classified and reduced to per-class statistics
 * on the device (`tileNoise`, forward in evaluation mode, `argmaxCounts`,
 * `softmaxStats`), so only 3 x C numbers per batch come back to TypeScript.
 *
 * Noise comes from its own Philox stream (seed, offset); the offset advances
 * by every draw, so a sampler never reuses noise and a run is reproducible
 * from (seed, offset).
 *
 * @module
 */
import { Var } from "../../compute/autograd.ts";
import * as ops from "../../compute/ops.ts";
import { Tensor, tidy } from "../../compute/tensor.ts";
import type { Module } from "../nn/module.ts";
import type { NoiseSampler, SampleStats } from "./certify.ts";

/** Options of {@linkcode EngineSampler}. */
export interface EngineSamplerOptions {
  /** Noise standard deviation. */
  sigma: number;
  /** Inverse temperature of the soft statistics, softmax(beta * z). */
  beta: number;
  /** Philox key of the noise stream. */
  seed: number;
  /** First stream position to use (a multiple of 4). Default 0. */
  offset?: number;
  /** Skip the softmax statistics (hard certification only). Default false. */
  hardOnly?: boolean;
}

/** Stream positions a draw of `num` copies in batches of `batch` uses, for images of `size` values. */
export function drawSpan(num: number, batch: number, size: number): number {
  let span = 0;
  for (let left = num; left > 0; left -= batch) {
    span += Math.ceil((Math.min(batch, left) * size) / 4) * 4;
  }
  return span;
}

/**
 * Noisy classification of one image by a model, batch by batch on the device.
 *
 * @example
 * ```ts ignore
 * const sampler = new EngineSampler(model, image, [1, 28, 28], { sigma: 0.25, beta: 16, seed: 1 });
 * const cert = await certify(sampler, "hard", { n0: 100, n: 1000, alpha: 0.001, batch: 500, sigma: 0.25 });
 * ```
 */
export class EngineSampler implements NoiseSampler {
  readonly #model: Module;
  readonly #image: Float32Array;
  readonly #shape: readonly number[];
  readonly #o: EngineSamplerOptions;
  #offset: number;

  /**
   * @param model the base classifier; put in evaluation mode for every batch
   * @param image one image, `C * H * W` values
   * @param shape `[C, H, W]`
   * @param o sigma, beta, noise stream, hardOnly
   */
  constructor(
    model: Module,
    image: Float32Array,
    shape: readonly number[],
    o: EngineSamplerOptions,
  ) {
    const size = shape.reduce((a, b) => a * b, 1);
    if (image.length !== size) {
      throw new RangeError(`Image has ${image.length} values, shape [${shape}] needs ${size}`);
    }
    const offset = o.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset % 4 !== 0) {
      throw new RangeError(`offset must be a whole multiple of 4, got ${offset}`);
    }
    if (!(o.sigma >= 0 && Number.isFinite(o.sigma))) throw new RangeError(`Bad sigma ${o.sigma}`);
    this.#model = model;
    this.#image = image;
    this.#shape = [...shape];
    this.#o = o;
    this.#offset = offset;
  }

  /** The next unused position of the noise stream. */
  get offset(): number {
    return this.#offset;
  }

  /**
   * Draws `num` fresh noisy copies in batches of at most `batch` and returns
   * the per-class vote counts and soft sums.
   *
   * @param num number of copies
   * @param batch largest batch sent through the model
   * @returns counts, softSum and softSumSq (float64, one entry per class)
   */
  sample(num: number, batch: number): SampleStats {
    if (!Number.isInteger(num) || num < 0) throw new RangeError(`num must be >= 0, got ${num}`);
    if (!Number.isInteger(batch) || batch < 1) {
      throw new RangeError(`batch must be >= 1, got ${batch}`);
    }
    this.#model.eval();
    const size = this.#image.length;
    let counts: Float64Array | undefined, softSum: Float64Array | undefined;
    let softSumSq: Float64Array | undefined;
    for (let left = num; left > 0;) {
      const b = Math.min(batch, left);
      const offset = this.#offset;
      const [c, s] = tidy(() => {
        const x = Tensor.fromF32(this.#image, [1, ...this.#shape]);
        const noisy = ops.tileNoise(x, b, this.#o.sigma, this.#o.seed, offset);
        const logits = this.#model.forward(Var.constant(noisy)).value;
        const votes = ops.argmaxCounts(logits);
        if (this.#o.hardOnly) return [votes.toF32(), undefined] as const;
        // Votes and soft sums come back in one read (on a gpu, one queue sync per batch).
        const classes = votes.size;
        const both = ops.concat([votes, ops.reshape(ops.softmaxStats(logits, this.#o.beta), [-1])])
          .toF32();
        return [both.subarray(0, classes), both.subarray(classes)] as const;
      });
      const classes = c.length;
      counts ??= new Float64Array(classes);
      softSum ??= new Float64Array(classes);
      softSumSq ??= new Float64Array(classes);
      for (let j = 0; j < classes; j++) {
        counts[j] += c[j];
        if (s) {
          softSum[j] += s[j];
          softSumSq[j] += s[classes + j];
        }
      }
      this.#offset += Math.ceil((b * size) / 4) * 4;
      left -= b;
    }
    if (counts === undefined) {
      const classes = this.#classes();
      return {
        counts: new Float64Array(classes),
        softSum: new Float64Array(classes),
        softSumSq: new Float64Array(classes),
      };
    }
    return { counts, softSum: softSum!, softSumSq: softSumSq! };
  }

  #classes(): number {
    return tidy(() =>
      this.#model.forward(Var.constant(Tensor.fromF32(this.#image, [1, ...this.#shape]))).shape[1]
    );
  }
}
