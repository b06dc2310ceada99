/**
 * The MACER objective (Zhai et al., ICLR 2020) for a batch of n images, each
 * seen through k noisy copies.
 *
 * Classification loss: sum over the batch of -log(mean_k softmax(z)[y] + 1e-10).
 * Robustness loss: p = mean_k softmax(beta * z); with p1 >= p2 its top two
 * values, keep the images whose top class is the label and whose
 * g = Phi^-1(p2) - Phi^-1(p1) is finite with |g| <= gamma; the loss is
 * sigma / 2 * sum(g + gamma) over them. Total: (classification + lambda *
 * robustness) / n. Which images are kept is decided on the host from n small
 * downloads, then applied on the device with an index selection, so gradients
 * flow only through the kept rows (and through Phi^-1).
 *
 * @module
 */
import { type Var } from "../../compute/autograd.ts";
import * as F from "../../compute/functional.ts";
import * as ops from "../../compute/ops.ts";
import { Tensor } from "../../compute/tensor.ts";

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

/** The loss (a graph node to differentiate) and its parts as host numbers. */
export interface MacerLossResult {
  /** (classification + lbd * robustness) / n, one element. */
  loss: Var;
  /** Classification loss summed over the batch (not divided by n). */
  classification: number;
  /** Robustness loss summed over the kept images (sigma / 2 * sum(g + gamma)). */
  robustness: number;
  /** Images that entered the robustness loss. */
  kept: number;
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
  const classification = -picked.value.item();

  // Robustness: top two of mean_k softmax(beta z).
  const pb = F.meanDim(F.softmax(z, 2, o.beta), 1);
  const top = F.topk2(pb);
  const topIdx = top.indices.toI32();
  const gaps = ops.sub(...columns(ops.ndtri(top.values.value))).toF32();
  const keep: number[] = [];
  for (let b = 0; b < n; b++) {
    const g = gaps[b];
    if (topIdx[2 * b] === labels[b] && Number.isFinite(g) && Math.abs(g) <= o.gamma) keep.push(b);
  }

  let total = F.affine(picked, -1 / n);
  let robustness = 0;
  if (keep.length > 0) {
    const m = keep.length;
    const sel = F.indexSelect(top.values, Tensor.fromI32(keep, [m]));
    const q = F.ndtri(sel);
    const q2 = F.gatherRows(q, Tensor.fromI32(new Int32Array(m).fill(1), [m, 1]));
    const q1 = F.gatherRows(q, Tensor.fromI32(new Int32Array(m), [m, 1]));
    const rl = F.affine(F.sum(F.sub(q2, q1)), o.sigma / 2, (o.sigma / 2) * o.gamma * m);
    robustness = rl.value.item();
    total = F.add(total, F.affine(rl, o.lbd / n));
  }
  return { loss: total, classification, robustness, kept: keep.length, n };
}

/** Columns 1 and 0 of a [n, 2] tensor, each as [n, 1] (so that col1 - col0 = p2 gap). */
function columns(t: Tensor): [Tensor, Tensor] {
  const n = t.shape[0];
  return [
    ops.gatherRows(t, Tensor.fromI32(new Int32Array(n).fill(1), [n, 1])),
    ops.gatherRows(t, Tensor.fromI32(new Int32Array(n), [n, 1])),
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
