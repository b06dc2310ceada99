/**
 * The MACER objective (Zhai et al., ICLR 2020) for a batch of n images, each
 * seen through k noisy copies.
 *
 * Classification loss: sum over the batch of -log(mean_k softmax(z)[y] + 1e-10).
 * Robustness loss: p = mean_k softmax(beta * z); with p1 >= p2 its top two
 * values, keep the images whose top class is the label and whose
 * g = Phi^-1(p2) - Phi^-1(p1) is finite with |g| <= gamma; the loss is
 * sigma / 2 * sum(g + gamma) over them. Total: (classification + lambda *
 * robustness) / n. Which images are kept is decided on the device (a 0/1
 * mask), so a step never waits for the host: the dropped rows' probabilities
 * are replaced by 1/2 before Phi^-1 and their terms multiplied by 0, so
 * gradients flow only through the kept rows (and through Phi^-1), and an
 * infinite quantile of a dropped row never meets the mask.
 *
 * @module
 */
import { Var } from "../../compute/autograd.ts";
import * as F from "../../compute/functional.ts";
import * as ops from "../../compute/ops.ts";
import { Tensor } from "../../compute/tensor.ts";
import { lossParts } from "./loss_values.ts";

/** Hyper-parameters of the MACER loss (reference defaults in brackets). */
export interface MacerLossOptions {
  /** Noise standard deviation [0.25]. */
  sigma: number;
  /** Noisy copies per image, `gauss_num` [16]. */
  k: number;
  /** Weight of the robustness loss, `lbd` [12]. */
  lbd: number;
  /** Hinge on the quantile gap [8]. */
  gamma: number;
  /** Inverse softmax temperature of the robustness term [16]. */
  beta: number;
}

/** The loss (a graph node to differentiate) and its parts, on the device. */
export interface MacerLossResult {
  /** (classification + lbd * robustness) / n, one element. */
  loss: Var;
  /**
   * [classification loss summed over the batch, robustness loss summed over
   * the kept images (sigma / 2 * sum(g + gamma)), images kept]: read them
   * with {@linkcode readLossValues}.
   */
  parts: Tensor;
  /** Images in the batch. */
  n: number;
}

/** Offsets in a Philox stream advance by whole groups of four numbers. */
export function roundUp4(count: number): number {
  return Math.ceil(count / 4) * 4;
}

function checkOptions(o: MacerLossOptions): void {
  if (!Number.isInteger(o.k) || o.k < 1) {
    throw new RangeError(`k must be an integer >= 1, got ${o.k}`);
  }
  for (
    const [name, v] of [["sigma", o.sigma], ["lbd", o.lbd], ["gamma", o.gamma], ["beta", o.beta]]
  ) {
    if (!(typeof v === "number" && Number.isFinite(v) && v >= 0)) {
      throw new RangeError(`${name} must be a finite number >= 0, got ${v}`);
    }
  }
}

/**
 * The MACER loss from the logits of the n*k noisy copies.
 *
 * @param logits [n*k, C], row b*k + c = image b, copy c
 * @param labels n class labels
 * @param o sigma, k, lbd, gamma, beta
 * @returns the loss node and its parts
 * @throws {RangeError} when the shapes disagree with k and the labels
 */
export function macerLossFromLogits(
  logits: Var,
  labels: Int32Array,
  o: MacerLossOptions,
): MacerLossResult {
  checkOptions(o);
  const n = labels.length;
  const [rows, classes] = logits.shape;
  if (logits.shape.length !== 2 || rows !== n * o.k) {
    throw new RangeError(
      `Logits have shape [${logits.shape}], expected [${
        n * o.k
      }, C] for ${n} images x ${o.k} copies`,
    );
  }
  const z = F.reshape(logits, [n, o.k, classes]);
  const y = Tensor.fromI32(labels, [n, 1]);

  // Classification: -sum_b log(mean_k softmax(z)[y] + 1e-10).
  const p = F.meanDim(F.softmax(z, 2), 1);
  const logp = F.log(F.affine(p, 1, 1e-10));
  const picked = F.sum(F.gatherRows(logp, y));

  // Robustness: top two of mean_k softmax(beta z), kept images only.
  const pb = F.meanDim(F.softmax(z, 2, o.beta), 1);
  const top = F.topk2(pb);
  const keep = ops.macerKeep(ops.ndtri(top.values.value), top.indices, y, o.gamma);
  const keep2 = ops.expandDim(ops.reshape(keep, [n]), 1, 2);
  const safe = F.add(
    F.mul(top.values, Var.constant(keep2)),
    Var.constant(ops.affine(keep2, -0.5, 0.5)),
  );
  const q = F.ndtri(safe);
  const [second, first] = columnIndices(n);
  const gap = F.sub(F.gatherRows(q, second), F.gatherRows(q, first));
  const rl = F.affine(F.sum(F.mul(F.affine(gap, 1, o.gamma), Var.constant(keep))), o.sigma / 2);

  const loss = F.add(F.affine(picked, -1 / n), F.affine(rl, o.lbd / n));
  const parts = lossParts(ops.affine(picked.value, -1), rl.value, ops.sumAll(keep));
  return { loss, parts, n };
}

/** Indices [n, 1] of columns 1 and 0, for gathering the second and first of two columns. */
function columnIndices(n: number): [Tensor, Tensor] {
  return [
    Tensor.fromI32(new Int32Array(n).fill(1), [n, 1]),
    Tensor.fromI32(new Int32Array(n), [n, 1]),
  ];
}

/** Where the noise of a batch comes from. */
export type NoiseSource =
  /** Philox stream `seed` from position `offset` (a multiple of 4). */
  | { seed: number; offset: number }
  /** Explicit standard normals of the tiled batch's shape (noisy = x + sigma * eps). */
  | { eps: Tensor };

/**
 * Tiles each image of x [n, ...] k times (row i*k + j is image i) and adds
 * sigma * N(0, 1) noise from `noise`.
 *
 * @param x images [n, C, H, W]
 * @param k copies per image
 * @param sigma noise standard deviation
 * @param noise a Philox position or explicit standard normals [n*k, C, H, W]
 * @returns the noisy batch [n*k, C, H, W]
 */
export function noisyCopies(x: Tensor, k: number, sigma: number, noise: NoiseSource): Tensor {
  if ("eps" in noise) {
    const want = [x.shape[0] * k, ...x.shape.slice(1)];
    if (noise.eps.shape.join() !== want.join()) {
      throw new RangeError(`Noise has shape [${noise.eps.shape}], expected [${want}]`);
    }
    return ops.add(ops.tileNoise(x, k, 0, 0, 0), ops.affine(noise.eps, sigma));
  }
  return ops.tileNoise(x, k, sigma, noise.seed, noise.offset);
}

/** Elements of noise a tiled batch draws, rounded up to the stream's step of 4. */
export function noiseDraw(x: Tensor, k: number): number {
  return roundUp4(x.size * k);
}
