/**
 * SmoothMix (Jeong et al., NeurIPS 2021), as their `train.py` trains: the attack of
 * `attacks.ts` gives a start point x_s (the clean image, or with `mix_step` 1 the
 * one-step adversary) and an adversarial point x_a on the smoothed classifier; then
 *
 *   cross-entropy of the n*m noisy copies of x_s (averaged over the rows)
 *   + eta * w * mean over the n*m rows of [top class of pbar is y] *
 *     KL(t || softmax(f(x_mix + noise))),
 *
 * with pbar the mean softmax of x_s's copies, lam ~ U(0, 1/2) per image, x_mix =
 * (1 - lam) x_s + lam x_a, t = (1 - lam) pbar + lam / C, and w the warm-up factor
 * min(1, epoch / warmup). As in their code, t is not detached: the gradient flows
 * into pbar through the KL term too. Both passes use the same noise as the attack.
 *
 * @module
 */
import { Var } from "../../compute/autograd.ts";
import * as F from "../../compute/functional.ts";
import * as ops from "../../compute/ops.ts";
import { Tensor } from "../../compute/tensor.ts";
import type { Module } from "../nn/module.ts";
import { scaleRows, smoothMixPgd, type SmoothMixPgdOptions } from "./attacks.ts";
import { repeatLabels, safeLog } from "./consistency_loss.ts";
import { lossParts } from "./loss_values.ts";
import { tilePlus } from "./smoothadv_loss.ts";

/** Settings of one SmoothMix step: its attack's, then the loss's own. */
export interface SmoothMixOptions extends Omit<SmoothMixPgdOptions, "onStep"> {
  eta: number;
  /** The warm-up factor of this epoch, min(1, epoch / warmup). */
  warmupFactor: number;
  /** Called with the adversarial point after each attack step (for tests). */
  onAttackStep?: (step: number, adv: Tensor) => void;
}

/** SmoothMix's warm-up factor at epoch `epoch` (1-based). */
export function warmupFactor(epoch: number, warmup: number): number {
  return Math.min(1, epoch / warmup);
}

/**
 * The SmoothMix loss of one batch.
 *
 * @param x clean images [n, C, H, W] in [0, 1]
 * @param noise [n*m, C, H, W], sigma applied, row i*m + j for image i
 * @param lam the mixing weights [n] in [0, 1/2)
 * @returns the loss node and its parts [cross-entropy x n, mixup term summed per image, 0]
 */
export function smoothMixLoss(
  model: Module,
  x: Tensor,
  labels: Int32Array,
  noise: Tensor,
  lam: Float32Array,
  o: SmoothMixOptions,
): { loss: Var; parts: Tensor; n: number } {
  const n = labels.length;
  if (lam.length !== n) throw new RangeError(`${lam.length} mixing weights for ${n} images`);
  const [start, adv] = smoothMixPgd(model, x, labels, noise, {
    m: o.m,
    steps: o.steps,
    alpha: o.alpha,
    mixStep: o.mixStep,
    maxnorm: o.maxnorm,
    maxnormS: o.maxnormS,
    onStep: o.onAttackStep,
  });
  const logitsC = model.forward(Var.constant(tilePlus(start, o.m, noise)));
  const classes = logitsC.shape[1];
  const xent = F.crossEntropy(logitsC, repeatLabels(labels, o.m));
  const pbar = F.meanDim(F.softmax(F.reshape(logitsC, [n, o.m, classes]), 2), 1);

  const lamT = Tensor.fromF32(lam, [n]);
  const rest = ops.affine(lamT, -1, 1); // 1 - lam
  const mixed = ops.add(scaleRows(start, rest), scaleRows(adv, lamT));
  const target = F.add(
    F.mul(pbar, Var.constant(ops.expandDim(rest, 1, classes))),
    Var.constant(ops.expandDim(ops.affine(lamT, 1 / classes), 1, classes)),
  );
  const logq = F.reshape(
    F.logSoftmax(model.forward(Var.constant(tilePlus(mixed, o.m, noise))), 1),
    [n, o.m, classes],
  );
  const t = F.expandDim(target, 1, o.m); // [n, m, C]
  const kl = F.sumDim(F.mul(t, F.sub(safeLog(t), logq)), 2); // [n, m]

  // Images whose top class under the smoothed start point is their label: MACER's
  // keep test with a zero quantile gap is exactly that test.
  const top = ops.topk2(pbar.value)[1];
  const y = Tensor.fromI32(labels, [n, 1]);
  const correct = ops.reshape(ops.macerKeep(ops.zeros([n, 2]), top, y, 0), [n]);
  const mask = Var.constant(ops.expandDim(correct, 1, o.m));
  const mix = F.sum(F.mul(kl, mask)); // summed over the n*m rows
  const weight = o.eta * o.warmupFactor;
  const loss = F.add(xent, F.affine(mix, weight / (n * o.m)));
  const zero = ops.full([1], 0);
  return {
    loss,
    parts: lossParts(ops.affine(xent.value, n), ops.affine(mix.value, weight / o.m), zero),
    n,
  };
}
