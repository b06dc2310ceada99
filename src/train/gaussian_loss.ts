/**
 * Gaussian data augmentation (Cohen, Rosenfeld and Kolter, ICML 2019): the
 * cross-entropy of the base classifier on one noisy copy x + N(0, sigma^2) of
 * each image, averaged over the batch.
 *
 * @module
 */
import { Var } from "../../compute/autograd.ts";
import * as F from "../../compute/functional.ts";
import * as ops from "../../compute/ops.ts";
import { Tensor } from "../../compute/tensor.ts";
import { lossParts } from "./loss_values.ts";
import type { Module } from "../nn/module.ts";
import { type NoiseSource, noisyCopies } from "./macer_loss.ts";

/** The loss node and its parts, on the device. */
export interface GaussianLossResult {
  /** Mean cross-entropy over the batch. */
  loss: Var;
  /**
   * [cross-entropy summed over the batch, 0, 0] (no robustness term): read
   * with `readLossValues` (`loss_values.ts`).
   */
  parts: Tensor;
  /** Images in the batch. */
  n: number;
}

/**
 * Cross-entropy of `model` on one noisy copy of each image.
 *
 * @param model the base classifier (in training mode for training)
 * @param x images [n, C, H, W]
 * @param labels n class labels
 * @param sigma noise standard deviation
 * @param noise Philox position (or explicit standard normals [n, C, H, W])
 * @returns the mean loss node and its parts
 */
export function gaussianLoss(
  model: Module,
  x: Tensor,
  labels: Int32Array,
  sigma: number,
  noise: NoiseSource,
): GaussianLossResult {
  const n = labels.length;
  if (x.shape[0] !== n) {
    throw new RangeError(`Batch has ${x.shape[0]} images but ${n} labels`);
  }
  const logits = model.forward(Var.constant(noisyCopies(x, 1, sigma, noise)));
  const loss = F.crossEntropy(logits, Tensor.fromI32(labels, [n, 1]));
  const zero = ops.full([1], 0);
  return { loss, parts: lossParts(ops.affine(loss.value, n), zero, zero), n };
}
