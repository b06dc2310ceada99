/**
 * SmoothAdv (Salman et al., NeurIPS 2019), as their `train_pgd.py` trains with PGD:
 * each image is attacked on the smoothed soft classifier with its m noise vectors
 * (`attacks.ts`), then the base classifier's cross-entropy is taken on the
 * adversarial image plus the same noise: on all m noisy copies (averaged over the
 * n*m rows) with `train_multi_noise`, else on the first copy of each image.
 *
 * @module
 */
import { Var } from "../../compute/autograd.ts";
import * as F from "../../compute/functional.ts";
import * as ops from "../../compute/ops.ts";
import { Tensor } from "../../compute/tensor.ts";
import type { Module } from "../nn/module.ts";
import { smoothAdvDdn, smoothAdvPgd } from "./attacks.ts";
import { repeatLabels } from "./consistency_loss.ts";
import { lossParts } from "./loss_values.ts";

/** Settings of one SmoothAdv step. */
export interface SmoothAdvOptions {
  /** `num_noise_vec`. */
  m: number;
  /** `num_steps`. */
  steps: number;
  /** The attack radius of this epoch (epsilon after its warm-up). */
  epsilon: number;
  /** `train_multi_noise`. */
  multiNoise: boolean;
  /** `no_grad_attack` (only with m > 1, as their code). */
  noGrad?: boolean;
  /** `attack` [PGD]. */
  attack?: "PGD" | "DDN";
  /** DDN's norm factor, `gamma_ddn` [0.05]. */
  gammaDdn?: number;
  /** Called with the perturbation after each attack step (for tests). */
  onAttackStep?: (step: number, delta: Tensor) => void;
}

/** The attack radius of epoch `epoch` (1-based): min(epsilon, epoch * epsilon / warmup). */
export function warmedEpsilon(epsilon: number, epoch: number, warmup: number): number {
  return Math.min(epsilon, (epoch * epsilon) / warmup);
}

/** Tiles x [n, ...] m times (row i*m + j is image i) and adds `noise` [n*m, ...]. */
export function tilePlus(x: Tensor, m: number, noise: Tensor): Tensor {
  return ops.add(ops.tileNoise(x, m, 0, 0, 0), noise);
}

/**
 * The SmoothAdv loss of one batch: attack (model in evaluation mode), then the
 * cross-entropy of the model (in the mode it was given) on the adversarial copies.
 *
 * @param x clean images [n, C, H, W] in [0, 1]
 * @param noise [n*m, C, H, W] noise, sigma already applied, row i*m + j for image i
 * @returns the mean cross-entropy node and its parts [summed per-image loss, 0, 0]
 */
export function smoothAdvLoss(
  model: Module,
  x: Tensor,
  labels: Int32Array,
  noise: Tensor,
  o: SmoothAdvOptions,
): { loss: Var; parts: Tensor; n: number } {
  const n = labels.length;
  const adv = o.attack === "DDN"
    ? smoothAdvDdn(model, x, labels, noise, {
      m: o.m,
      steps: o.steps,
      maxNorm: o.epsilon,
      gamma: o.gammaDdn ?? 0.05,
      onStep: o.onAttackStep,
    })
    : smoothAdvPgd(model, x, labels, noise, {
      m: o.m,
      steps: o.steps,
      maxNorm: o.epsilon,
      noGrad: o.noGrad,
      onStep: o.onAttackStep,
    });
  let input: Tensor, rows: number;
  if (o.multiNoise) {
    input = tilePlus(adv, o.m, noise);
    rows = o.m;
  } else {
    const first = Tensor.fromI32(Int32Array.from({ length: n }, (_, i) => i * o.m), [n]);
    input = ops.add(adv, ops.reshape(ops.indexSelect(noise, first), adv.shape));
    rows = 1;
  }
  const logits = model.forward(Var.constant(input));
  const loss = F.crossEntropy(logits, repeatLabels(labels, rows));
  const zero = ops.full([1], 0);
  return { loss, parts: lossParts(ops.affine(loss.value, n), zero, zero), n };
}
