/**
 * Consistency regularization (Jeong and Shin, NeurIPS 2020), the default form of
 * their `consistency.py`, for a batch of n images each seen through m noisy copies:
 *
 *   cross-entropy averaged over the n*m copies
 *   + mean over images of ( lbd * mean_j KL(pbar || softmax(z_j)) + eta * H(pbar) ),
 *
 * where pbar is the mean of the m softmaxes, KL(pbar || q) = sum pbar (log pbar - log q)
 * and H(pbar) = -sum pbar log pbar. As in their code, pbar is not detached: the
 * gradient flows through it in both terms.
 *
 * @module
 */
import { Var } from "../../compute/autograd.ts";
import * as F from "../../compute/functional.ts";
import { Tensor } from "../../compute/tensor.ts";
import { lossParts } from "./loss_values.ts";
import * as ops from "../../compute/ops.ts";

/** Hyper-parameters of the consistency loss (their script's defaults in brackets). */
export interface ConsistencyLossOptions {
  /** Noisy copies per image, `num_noise_vec` [2 here; 1 in their script]. */
  m: number;
  /** Weight of the KL term [10]. */
  lbd: number;
  /** Weight of the entropy term [0.5]. */
  eta: number;
}

/** The loss node and its parts, on the device. */
export interface ConsistencyLossResult {
  loss: Var;
  /**
   * [cross-entropy times n (per-image mean over copies, summed), consistency term
   * summed over the batch, 0]: read with `readLossValues`.
   */
  parts: Tensor;
  n: number;
}

/** Each label repeated m times (row i*m + j is image i's copy j), as an i32 [n*m, 1] tensor. */
export function repeatLabels(labels: Int32Array, m: number): Tensor {
  const out = new Int32Array(labels.length * m);
  labels.forEach((y, i) => out.fill(y, i * m, (i + 1) * m));
  return Tensor.fromI32(out, [out.length, 1]);
}

/** `log(p + 1e-20)`: the authors' clamp at 1e-20, without a NaN where a probability is 0. */
export function safeLog(p: Var): Var {
  return F.log(F.affine(p, 1, 1e-20));
}

/**
 * The consistency loss from the logits of the n*m noisy copies.
 *
 * @param logits [n*m, C], row i*m + j = image i, copy j
 * @param labels n class labels
 * @param o m, lbd, eta
 * @throws {RangeError} when the shapes disagree with m and the labels
 */
export function consistencyLossFromLogits(
  logits: Var,
  labels: Int32Array,
  o: ConsistencyLossOptions,
): ConsistencyLossResult {
  const n = labels.length;
  const [rows, classes] = logits.shape;
  if (!Number.isInteger(o.m) || o.m < 1) throw new RangeError(`m must be >= 1, got ${o.m}`);
  if (logits.shape.length !== 2 || rows !== n * o.m) {
    throw new RangeError(
      `Logits have shape [${logits.shape}], expected [${n * o.m}, C] for ${n} images x ${o.m}`,
    );
  }
  const xent = F.crossEntropy(logits, repeatLabels(labels, o.m));
  const z = F.reshape(logits, [n, o.m, classes]);
  const logq = F.logSoftmax(z, 2);
  const pbar = F.meanDim(F.softmax(z, 2), 1); // [n, C]
  const plogp = F.sum(F.mul(pbar, safeLog(pbar))); // sum over the batch of -H(pbar)
  // sum_b sum_c pbar * mean_j log q_j
  const cross = F.sum(F.mul(pbar, F.meanDim(logq, 1)));
  const kl = F.sub(plogp, cross);
  const reg = F.add(F.affine(kl, o.lbd), F.affine(plogp, -o.eta)); // summed over the batch
  const loss = F.add(xent, F.affine(reg, 1 / n));
  const zero = ops.full([1], 0);
  return { loss, parts: lossParts(ops.affine(xent.value, n), reg.value, zero), n };
}
