/**
 * L2 attacks on the smoothed soft classifier, as SmoothAdv (Salman et al., NeurIPS
 * 2019, `attacks.py`'s PGD_L2 with several noise vectors) and SmoothMix (Jeong et
 * al., NeurIPS 2021, their `SmoothMix_PGD`) train with: each step ascends
 * -log(mean_j softmax(f(x' + delta_j))[y]) over the m fixed noise vectors delta_j of
 * each image, along the gradient's direction (the gradient over its per-image L2
 * norm), then projects.
 *
 * The model is put in evaluation mode for the attack (as both scripts do) and its
 * parameters' gradients are discarded after each step: only the input's gradient is
 * used. Everything runs on the op table, so on any device.
 *
 * @module
 */
import { backward, Var } from "../../compute/autograd.ts";
import * as F from "../../compute/functional.ts";
import * as ops from "../../compute/ops.ts";
import { Tensor, tidy } from "../../compute/tensor.ts";
import type { Module } from "../nn/module.ts";
import { repeatLabels, safeLog } from "./consistency_loss.ts";

/** Per-image L2 norms [n] of x [n, ...]. */
export function rowNorms(x: Tensor): Tensor {
  const flat = ops.reshape(x, [x.shape[0], -1]);
  return ops.sqrt(ops.sumDim(ops.mul(flat, flat), 1));
}

/** x [n, ...] with each image multiplied by its entry of s [n]. */
export function scaleRows(x: Tensor, s: Tensor): Tensor {
  const d = x.size / x.shape[0];
  return ops.reshape(ops.mul(ops.reshape(x, [x.shape[0], d]), ops.expandDim(s, 1, d)), x.shape);
}

/** x over its per-image norm plus `eps` (`x / (||x|| + eps)`). */
export function normalizeRows(x: Tensor, eps: number): Tensor {
  return scaleRows(x, ops.recip(ops.affine(rowNorms(x), 1, eps)));
}

/**
 * torch's `renorm(p=2, dim=0, maxnorm)`: each image whose norm exceeds `maxnorm`
 * scaled to `maxnorm / (norm + 1e-7)`, as min(1, maxnorm / (norm + 1e-7)).
 */
export function renormRows(x: Tensor, maxnorm: number): Tensor {
  const ratio = ops.affine(ops.recip(ops.affine(rowNorms(x), 1, 1e-7)), -maxnorm, 1);
  return scaleRows(x, ops.affine(ops.relu(ratio), -1, 1)); // 1 - relu(1 - ratio)
}

/** Elementwise clamp to [0, 1]: relu(x) - relu(x - 1). */
export function clamp01(x: Tensor): Tensor {
  return ops.sub(ops.relu(x), ops.relu(ops.affine(x, 1, -1)));
}

/**
 * The gradient with respect to x' [n, ...] of the smoothed soft classifier's negative
 * log-likelihood, `reduce(-log(max(mean_j softmax(f(x'_i + noise_ij))[y_i], 1e-20)))`
 * with reduce = mean over images (SmoothAdv) or sum (SmoothMix); the direction is the
 * same either way.
 *
 * @param noise [n*m, ...] noise already scaled by sigma, row i*m + j for image i
 */
export function smoothedNllGradient(
  model: Module,
  adv: Tensor,
  labels: Int32Array,
  noise: Tensor,
  m: number,
  reduction: "mean" | "sum",
  onLogits?: (logits: Tensor) => void,
): Tensor {
  const n = labels.length;
  const d = adv.size / n;
  const x = new Var(adv, true);
  const grad = tidy(() => {
    const tiled = F.reshape(F.expandDim(F.reshape(x, [n, d]), 1, m), noise.shape);
    const logits = model.forward(F.add(tiled, Var.constant(noise)));
    onLogits?.(logits.value);
    const classes = logits.shape[1];
    const p = F.meanDim(F.softmax(F.reshape(logits, [n, m, classes]), 2), 1);
    const loss = F.nllLoss(safeLog(p), repeatLabels(labels, 1), reduction);
    backward(loss);
    model.zeroGrad();
    return x.grad!;
  });
  return grad;
}

/**
 * SmoothAdv's `no_grad_attack` direction (their `_attack_mutlinoise_no_grad`): no
 * backpropagation, the mean over each image's m copies of -softmax(f(x'_i + noise_ij))[y_i]
 * times noise_ij, a zeroth-order estimate of the same ascent direction.
 */
export function noiseWeightedDirection(
  model: Module,
  adv: Tensor,
  labels: Int32Array,
  noise: Tensor,
  m: number,
): Tensor {
  const n = labels.length;
  const d = adv.size / n;
  const tiled = ops.reshape(ops.expandDim(ops.reshape(adv, [n, d]), 1, m), noise.shape);
  const logits = model.forward(Var.constant(ops.add(tiled, noise))).value;
  const py = ops.gatherRows(ops.softmax(logits, 1), repeatLabels(labels, m));
  const weighted = scaleRows(noise, ops.affine(ops.reshape(py, [n * m]), -1));
  return ops.reshape(ops.sumDim(ops.reshape(weighted, [n, m, d]), 1, 1 / m), adv.shape);
}

/** Settings of SmoothAdv's PGD. */
export interface SmoothAdvPgdOptions {
  /** Noisy copies per image, `num_noise_vec`. */
  m: number;
  /** Steps, `num_steps`. */
  steps: number;
  /** L2 radius of the perturbation, `epsilon` after its warm-up. */
  maxNorm: number;
  /**
   * `no_grad_attack`: step along {@linkcode noiseWeightedDirection} instead of the
   * gradient; as in their code, only with more than one noise vector.
   */
  noGrad?: boolean;
  /** Called with the perturbation after each step (for tests). */
  onStep?: (step: number, delta: Tensor) => void;
}

/**
 * SmoothAdv's PGD: delta starts at 0; each step adds `2 * maxNorm / steps` times the
 * normalised gradient, clamps x + delta to [0, 1] and renorms delta to `maxNorm`.
 * A zero gradient leaves delta where it is (the authors draw a random direction).
 *
 * @param x clean images [n, C, H, W] in [0, 1]
 * @param noise [n*m, C, H, W], sigma already applied
 * @returns the adversarial images x + delta [n, C, H, W]
 */
export function smoothAdvPgd(
  model: Module,
  x: Tensor,
  labels: Int32Array,
  noise: Tensor,
  o: SmoothAdvPgdOptions,
): Tensor {
  const lr = (o.maxNorm / o.steps) * 2;
  const wasTraining = model.training;
  model.eval();
  try {
    let delta = ops.zeros(x.shape);
    for (let step = 0; step < o.steps; step++) {
      delta = tidy(() => {
        const at = ops.add(x, delta);
        const g = o.noGrad && o.m > 1
          ? noiseWeightedDirection(model, at, labels, noise, o.m)
          : smoothedNllGradient(model, at, labels, noise, o.m, "mean");
        const moved = ops.add(delta, ops.affine(normalizeRows(g, 1e-30), lr));
        const inside = ops.sub(clamp01(ops.add(x, moved)), x);
        return renormRows(inside, o.maxNorm);
      });
      o.onStep?.(step, delta);
    }
    return ops.add(x, delta);
  } finally {
    model.train(wasTraining);
  }
}

/** Settings of SmoothAdv's DDN. */
export interface SmoothAdvDdnOptions {
  m: number;
  steps: number;
  /** The norm bound, and the starting norm (`epsilon` after its warm-up, as train_pgd.py sets both). */
  maxNorm: number;
  /** Factor of the norm's change per step, their `--gamma-DDN` [0.05]. */
  gamma: number;
  /** Called with the running perturbation after each step (for tests). */
  onStep?: (step: number, delta: Tensor) => void;
}

/** torch.round: to the nearest integer, ties to even. */
function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** `round(t * 255) / 255` elementwise in float32, as their 8-bit quantisation (on the host). */
function quantize(t: Tensor): Tensor {
  const v = t.toF32();
  for (let i = 0; i < v.length; i++) v[i] = Math.fround(roundEven(Math.fround(v[i] * 255)) / 255);
  return Tensor.fromF32(v, t.shape);
}

/** The most frequent of each image's m predictions (the smallest on a tie), as torch.mode. */
function modes(top: Int32Array, n: number, m: number): Int32Array {
  return Int32Array.from({ length: n }, (_, b) => {
    const counts = new Map<number, number>();
    for (let j = 0; j < m; j++) {
      const c = top[2 * (b * m + j)];
      counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    let best = -1, most = 0;
    for (const [c, k] of counts) if (k > most || (k === most && c < best)) [best, most] = [c, k];
    return best;
  });
}

/**
 * SmoothAdv's DDN (Rony et al.'s decoupled direction and norm, as their `attacks.py` runs it
 * with several noise vectors): each step takes a step of cosine-annealed size (1 down to 0.01)
 * along the normalised gradient of the smoothed classifier's loss, then rescales the
 * perturbation to a norm that shrinks by `gamma` where the image's majority prediction under
 * noise is already wrong and grows by `gamma` where not (capped at the norm of the farthest
 * image in [0, 1]), quantises x + delta to 8 bits and clamps it to [0, 1]. The result is the
 * smallest adversarial perturbation found (none: the clean image), renormed to `maxNorm` and
 * quantised. The decisions and the 8-bit rounding are taken on the host.
 *
 * @returns the adversarial images [n, C, H, W]
 */
export function smoothAdvDdn(
  model: Module,
  x: Tensor,
  labels: Int32Array,
  noise: Tensor,
  o: SmoothAdvDdnOptions,
): Tensor {
  const n = labels.length;
  const wasTraining = model.training;
  model.eval();
  try {
    const half = ops.affine(x, 1, -0.5);
    const far = ops.affine(ops.add(ops.relu(half), ops.relu(ops.affine(half, -1))), 1, 0.5);
    const worst = rowNorms(far).toF32();
    const bestL2 = Float32Array.from(worst);
    const norm = new Float32Array(n).fill(o.maxNorm);
    let delta = ops.zeros(x.shape), best = ops.zeros(x.shape);
    for (let step = 0; step < o.steps; step++) {
      const lr = 0.01 + ((1 - 0.01) * (1 + Math.cos((Math.PI * (step + 1)) / o.steps))) / 2;
      [delta, best] = tidy(() => {
        const l2 = rowNorms(delta).toF32();
        let top: Int32Array = new Int32Array(0);
        const g = smoothedNllGradient(
          model,
          ops.add(x, delta),
          labels,
          noise,
          o.m,
          "mean",
          (logits) => void (top = ops.topk2(logits)[1].toI32()),
        );
        const pred = modes(top, n, o.m);
        const adv = Array.from(pred, (p, b) => p !== labels[b]);
        const both = Float32Array.from(adv, (a, b) => (a && l2[b] < bestL2[b] ? 1 : 0));
        both.forEach((v, b) => v === 1 && (bestL2[b] = l2[b]));
        const nextBest = ops.add(best, scaleRows(ops.sub(delta, best), Tensor.fromF32(both, [n])));
        const moved = ops.add(delta, ops.affine(normalizeRows(g, 1e-30), lr));
        adv.forEach((a, b) => {
          norm[b] = Math.min(
            Math.fround(norm[b] * Math.fround(1 - (a ? 1 : -1) * o.gamma)),
            worst[b],
          );
        });
        const length = rowNorms(moved).toF32();
        const factor = Float32Array.from(norm, (v, b) => v / length[b]);
        const scaled = ops.add(scaleRows(moved, Tensor.fromF32(factor, [n])), x);
        return [ops.sub(clamp01(quantize(scaled)), x), nextBest];
      });
      o.onStep?.(step, delta);
    }
    return ops.add(x, quantize(renormRows(best, o.maxNorm)));
  } finally {
    model.train(wasTraining);
  }
}

/** Settings of SmoothMix's attack. */
export interface SmoothMixPgdOptions {
  m: number;
  steps: number;
  /** Step size. */
  alpha: number;
  /** The step whose starting point becomes the mixup's start. */
  mixStep: number;
  /** Bound on the adversarial point's distance from x (undefined: none). */
  maxnorm?: number;
  /** Bound on the start point's distance from x, after its warm-up. */
  maxnormS: number;
  /** Called with the adversarial point after each step (for tests). */
  onStep?: (step: number, adv: Tensor) => void;
}

/** Renorm of `adv - x` to `maxnorm` if given, then a clamp to [0, 1]. */
function project(adv: Tensor, x: Tensor, maxnorm: number | undefined): Tensor {
  const bounded = maxnorm === undefined ? adv : ops.add(x, renormRows(ops.sub(adv, x), maxnorm));
  return clamp01(bounded);
}

/**
 * SmoothMix's attack: `steps` steps of size alpha along the normalised gradient (over
 * norm + 1e-8), each projected; the point reached before step `mixStep` is the
 * mixup's start, projected into the `maxnormS` ball.
 *
 * @returns [start, adversarial] points [n, C, H, W]
 */
export function smoothMixPgd(
  model: Module,
  x: Tensor,
  labels: Int32Array,
  noise: Tensor,
  o: SmoothMixPgdOptions,
): [Tensor, Tensor] {
  const wasTraining = model.training;
  model.eval();
  try {
    let adv = x, start = x;
    for (let step = 0; step < o.steps; step++) {
      if (step === o.mixStep) start = adv;
      adv = tidy(() => {
        const g = smoothedNllGradient(model, adv, labels, noise, o.m, "sum");
        return project(ops.add(adv, ops.affine(normalizeRows(g, 1e-8), o.alpha)), x, o.maxnorm);
      });
      o.onStep?.(step, adv);
    }
    return [project(start, x, o.maxnormS), adv];
  } finally {
    model.train(wasTraining);
  }
}
