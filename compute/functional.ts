/**
 * Differentiable ops on {@linkcode Var}s: each forward calls one library op
 * and records its explicit backward kernel.
 *
 * @module
 */
import { type BackwardFn, record, Var } from "./autograd.ts";
import * as ops from "./ops.ts";
import type { Tensor } from "./tensor.ts";

export function add(a: Var, b: Var): Var {
  return record(ops.add(a.value, b.value), [a, b], (dy) => [dy, dy]);
}

export function sub(a: Var, b: Var): Var {
  return record(ops.sub(a.value, b.value), [a, b], (dy) => [dy, ops.affine(dy, -1)]);
}

/** Elementwise product of same-shape tensors. */
export function mul(a: Var, b: Var): Var {
  return record(
    ops.mul(a.value, b.value),
    [a, b],
    (dy) => [ops.mul(dy, b.value), ops.mul(dy, a.value)],
  );
}

/** `scale * x + shift` */
export function affine(x: Var, scale: number, shift = 0): Var {
  return record(ops.affine(x.value, scale, shift), [x], (dy) => [ops.affine(dy, scale)]);
}

export function relu(x: Var): Var {
  const y = ops.relu(x.value);
  return record(y, [x], (dy) => [ops.reluBackward(y, dy)]);
}

/** `relu(a + b)` in one pass (a residual sum); both inputs get the masked gradient. */
export function addRelu(a: Var, b: Var): Var {
  const y = ops.addRelu(a.value, b.value);
  return record(y, [a, b], (dy) => {
    const g = ops.reluBackward(y, dy);
    return [g, g];
  });
}

export function log(x: Var): Var {
  return record(ops.log(x.value), [x], (dy) => [ops.logBackward(x.value, dy)]);
}

/** Square root; d/dx = 1 / (2 sqrt(x)). */
export function sqrt(x: Var): Var {
  const y = ops.sqrt(x.value);
  return record(y, [x], (dy) => [ops.mul(dy, ops.affine(ops.recip(y), 0.5))]);
}

/** `1 / x`; d/dx = -1 / x^2. */
export function recip(x: Var): Var {
  const y = ops.recip(x.value);
  return record(y, [x], (dy) => [ops.mul(dy, ops.affine(ops.mul(y, y), -1))]);
}

/** `min(max(x, lo), hi)` as `lo + relu(x - lo) - relu(x - hi)` (gradient 1 strictly inside). */
export function clamp(x: Var, lo: number, hi: number): Var {
  return affine(sub(relu(affine(x, 1, -lo)), relu(affine(x, 1, -hi))), 1, lo);
}

/** The standard normal quantile Phi^-1 with d/dp = 1 / phi(Phi^-1(p)). */
export function ndtri(p: Var): Var {
  const y = ops.ndtri(p.value);
  return record(y, [p], (dy) => [ops.ndtriBackward(y, dy)]);
}

export function reshape(x: Var, shape: readonly number[]): Var {
  return record(ops.reshape(x.value, shape), [x], (dy) => [ops.reshape(dy, x.shape)]);
}

/** Flattens all dims after the first. */
export function flatten(x: Var): Var {
  return reshape(x, [x.shape[0], -1]);
}

/** Sum of all elements (shape []); its gradient stays on the device. */
export function sum(x: Var): Var {
  return record(
    ops.sumAll(x.value),
    [x],
    (dy) => [ops.reshape(ops.expandDim(dy, 0, x.value.size), x.shape)],
  );
}

/** `scale * x.sum(dim)` */
export function sumDim(x: Var, dim: number, scale = 1): Var {
  return record(
    ops.sumDim(x.value, dim, scale),
    [x],
    (dy) => [ops.expandDim(dy, dim, x.shape[dim], scale)],
  );
}

/** x repeated `size` times along a new dim `dim` (`scale` times); backward sums over it. */
export function expandDim(x: Var, dim: number, size: number, scale = 1): Var {
  return record(
    ops.expandDim(x.value, dim, size, scale),
    [x],
    (dy) => [ops.sumDim(dy, dim, scale)],
  );
}

export function meanDim(x: Var, dim: number): Var {
  return sumDim(x, dim, 1 / x.shape[dim]);
}

/** `softmax(scale * x)` along `dim`. */
export function softmax(x: Var, dim: number, scale = 1): Var {
  const y = ops.softmax(x.value, dim, scale);
  return record(y, [x], (dy) => [ops.softmaxBackward(y, dy, dim, scale)]);
}

export function logSoftmax(x: Var, dim: number, scale = 1): Var {
  const y = ops.logSoftmax(x.value, dim, scale);
  return record(y, [x], (dy) => [ops.logSoftmaxBackward(y, dy, dim, scale)]);
}

/** `out[r, j] = x[r, idx[r, j]]` for x [n, C] and constant i32 idx [n, k]. */
export function gatherRows(x: Var, idx: Tensor): Var {
  return record(
    ops.gatherRows(x.value, idx),
    [x],
    (dy) => [ops.scatterRows(dy, idx, x.shape[1])],
  );
}

/** Rows `idx` (i32 [m]) of x along dim 0: masked selection by kept row numbers. */
export function indexSelect(x: Var, idx: Tensor): Var {
  return record(ops.indexSelect(x.value, idx), [x], (dy) => [ops.indexAdd(dy, idx, x.shape[0])]);
}

/** The two largest values of each row (differentiable) and their columns. */
export function topk2(x: Var): { values: Var; indices: Tensor } {
  const [values, indices] = ops.topk2(x.value);
  return {
    values: record(values, [x], (dy) => [ops.scatterRows(dy, indices, x.shape[1])]),
    indices,
  };
}

/** Mean negative log-likelihood of log-probabilities [n, C] at i32 labels [n, 1]. */
export function nllLoss(logp: Var, labels: Tensor, reduction: "mean" | "sum" = "mean"): Var {
  const picked = sum(gatherRows(logp, labels));
  return affine(picked, reduction === "mean" ? -1 / logp.shape[0] : -1);
}

/** Cross-entropy of logits [n, C] with i32 labels [n, 1], averaged over n. */
export function crossEntropy(logits: Var, labels: Tensor): Var {
  return nllLoss(logSoftmax(logits, 1), labels);
}

export function linear(x: Var, w: Var, b?: Var): Var {
  const y = ops.linear(x.value, w.value, b?.value);
  return record(y, b ? [x, w, b] : [x, w], (dy) => {
    const [dx, dw, db] = ops.linearBackward(x.value, w.value, dy);
    return b ? [dx, dw, db] : [dx, dw];
  });
}

export function conv2d(x: Var, w: Var, b: Var | undefined, o: ops.Conv2dOptions): Var {
  const y = ops.conv2d(x.value, w.value, b?.value, o);
  return record(y, b ? [x, w, b] : [x, w], conv2dBackwardFn(x, w, b, o));
}

function conv2dBackwardFn(x: Var, w: Var, b: Var | undefined, o: ops.Conv2dOptions): BackwardFn {
  return (dy, take) => {
    // A gradient already collected for x (a residual branch) is added as dx
    // is written.
    const dxAcc = x.requiresGrad ? take(0) : undefined;
    const g = ops.conv2dBackward(x.value, w.value, dy, {
      ...o,
      withBias: b !== undefined,
      needDx: x.requiresGrad,
      dxAcc,
    });
    return b ? [g.dx ?? null, g.dw, g.db!] : [g.dx ?? null, g.dw];
  };
}

/**
 * {@linkcode conv2d} that also returns the batch statistics of its output (computed as
 * the output is written), for a following {@linkcode batchNormTrain}.
 */
export function conv2dStats(
  x: Var,
  w: Var,
  b: Var | undefined,
  o: ops.Conv2dOptions,
): { y: Var; stats: ops.BatchStats } {
  const [y, mean, variance] = ops.conv2dStats(x.value, w.value, b?.value, o);
  return {
    y: record(y, b ? [x, w, b] : [x, w], conv2dBackwardFn(x, w, b, o)),
    stats: [mean, variance],
  };
}

/**
 * `conv2d(relu(batchNorm(x)), w)` in training mode, given x's batch statistics
 * `batch`: the batch norm + ReLU is the convolution's prologue, applied as it reads
 * x and never written out. Updates the running statistics in place; returns the
 * output and its batch statistics. Backward: the convolution's gradients (with
 * respect to w, and to the prologue's output), then the batch norm + ReLU backward,
 * in one op that takes the batch norm's sums as the data gradient is written.
 */
export function bnReluConv2dStats(
  x: Var,
  gamma: Var,
  beta: Var,
  running: ops.RunningStats,
  batch: ops.BatchStats,
  w: Var,
  o: ops.Conv2dOptions,
): { y: Var; stats: ops.BatchStats } {
  const [n, , h, wd] = x.shape;
  const [mean, invstd, scale, shift] = ops.batchNormTrainAffine(
    gamma.value,
    beta.value,
    running,
    batch,
    n * h * wd,
  );
  const prologue = [scale, shift] as const;
  const [y, ym, yv] = ops.conv2dStats(x.value, w.value, undefined, o, prologue);
  const out = record(y, [x, w, gamma, beta], (dy) => {
    const bn = [mean, invstd, scale, shift] as const;
    const [dx, dw, dgamma, dbeta] = ops.bnReluConv2dBackward(
      x.value,
      w.value,
      dy,
      gamma.value,
      beta.value,
      bn,
      o,
    );
    return [dx, dw, dgamma, dbeta];
  });
  return { y: out, stats: [ym, yv] };
}

/** A bias-free convolution and the training-mode batch norm after it. */
export interface ConvBn {
  w: Var;
  o: ops.Conv2dOptions;
  gamma: Var;
  beta: Var;
  running: ops.RunningStats;
}

/** What a residual block's forward keeps for its backward. */
interface BlockSaved {
  x: Tensor;
  z1: Tensor;
  affine: [Tensor, Tensor, Tensor, Tensor];
  z2: Tensor;
  out: Tensor;
  mean2: Tensor;
  invstd2: Tensor;
}

/** The forward of {@linkcode residualBlockTrain} on tensors. */
function blockForward(x: Tensor, c1: ConvBn, c2: ConvBn): BlockSaved {
  const [z1, m1, v1] = ops.conv2dStats(x, c1.w.value, undefined, c1.o);
  const [n, , h, wd] = z1.shape;
  const affine = ops.batchNormTrainAffine(
    c1.gamma.value,
    c1.beta.value,
    c1.running,
    [m1, v1],
    n * h * wd,
  );
  const [z2, m2, v2] = ops.conv2dStats(z1, c2.w.value, undefined, c2.o, [affine[2], affine[3]]);
  const [out, mean2, invstd2] = ops.batchNormAddReluTrain(
    z2,
    c2.gamma.value,
    c2.beta.value,
    x,
    c2.running,
    [m2, v2],
  );
  return { x, z1, affine, z2, out, mean2, invstd2 };
}

/** {@linkcode ops.residualBlockBackward} of one block's saved forward. */
function blockBackward(
  s: BlockSaved,
  [c1, c2]: readonly [ConvBn, ConvBn],
  grad: ops.BlockGrad,
  o: { dxAcc?: Tensor; previous?: BlockSaved },
): Tensor[] {
  const p = o.previous;
  return ops.residualBlockBackward(
    { x: s.x, w1: c1.w.value, z1: s.z1, w2: c2.w.value, z2: s.z2 },
    { gamma: c1.gamma.value, affine: s.affine },
    { gamma: c2.gamma.value, mean: s.mean2, invstd: s.invstd2 },
    grad,
    {
      conv1: c1.o,
      conv2: c2.o,
      dxAcc: o.dxAcc,
      previous: p && { z2: p.z2, mean: p.mean2, invstd: p.invstd2 },
    },
  );
}

/**
 * A residual block with an identity shortcut in training mode,
 * `relu(bn2(conv2(relu(bn1(conv1(x))))) + x)` with batch statistics: conv1 taking
 * its output's statistics as it writes it, bn1 + ReLU as conv2's prologue, then bn2,
 * the shortcut and the ReLU in one op; updates both running statistics in place.
 * Backward: one op (see {@linkcode ops.residualBlockBackward}) in which neither
 * batch norm's input gradient is written out.
 */
export function residualBlockTrain(x: Var, c1: ConvBn, c2: ConvBn): Var {
  return residualRunTrain(x, [[c1, c2]]);
}

/**
 * Consecutive residual blocks with identity shortcuts ({@linkcode residualBlockTrain}
 * each) as one node: in the backward, each block's op also takes the first pass of
 * the previous block's bn2 backward (masking its output's gradient and taking its
 * sums) as it writes that gradient, instead of a pass of its own over memory.
 */
export function residualRunTrain(x: Var, blocks: readonly (readonly [ConvBn, ConvBn])[]): Var {
  if (blocks.length === 0) throw new RangeError("residualRunTrain: no blocks");
  const saved: BlockSaved[] = [];
  for (const [c1, c2] of blocks) saved.push(blockForward(saved.at(-1)?.out ?? x.value, c1, c2));
  const out = saved.at(-1)!.out;
  const params = blocks.flatMap(([c1, c2]) => [c1.w, c1.gamma, c1.beta, c2.w, c2.gamma, c2.beta]);
  return record(out, [x, ...params], (dout, take) => {
    const grads: (Tensor | null)[] = [null, ...params.map(() => null)];
    let grad: ops.BlockGrad = { out, dout };
    for (let k = blocks.length - 1; k >= 0; k--) {
      const previous = saved[k - 1];
      const dxAcc = previous ? undefined : take(0);
      const outs = blockBackward(saved[k], blocks[k], grad, { dxAcc, previous });
      if ("dr" in grad) grad.dr.dispose(); // consumed: one block's worth stays alive
      if (previous) {
        const [dr, dgamma2, dbeta2] = outs;
        grad = { dr, dgamma2, dbeta2 };
      } else {
        grads[0] = outs[0];
      }
      // dw1, dgamma1, dbeta1, dw2, dgamma2, dbeta2 of block k.
      grads.splice(1 + 6 * k, 6, ...outs.slice(previous ? 3 : 1));
    }
    return grads;
  });
}

export function maxPool2d(x: Var, kernel: number, stride = kernel): Var {
  const [y, idx] = ops.maxPool2d(x.value, kernel, stride);
  const [h, w] = x.shape.slice(2);
  return record(y, [x], (dy) => [ops.maxPool2dBackward(dy, idx, kernel, stride, h, w)]);
}

export function avgPool2d(x: Var, kernel: number, stride = kernel): Var {
  const y = ops.avgPool2d(x.value, kernel, stride);
  const [h, w] = x.shape.slice(2);
  return record(y, [x], (dy) => [ops.avgPool2dBackward(dy, kernel, stride, h, w)]);
}

/**
 * Batch norm with batch statistics, then a ReLU if `relu` (fused forward and backward
 * kernels); updates the running statistics in place.
 */
export function batchNormTrain(
  x: Var,
  gamma: Var,
  beta: Var,
  stats: ops.RunningStats,
  relu = false,
  batch?: ops.BatchStats,
): Var {
  const [y, mean, invstd] = ops.batchNormTrain(
    x.value,
    gamma.value,
    beta.value,
    stats,
    relu,
    batch,
  );
  return record(
    y,
    [x, gamma, beta],
    (dy) =>
      relu
        ? ops.batchNormReluBackward(x.value, dy, gamma.value, beta.value, mean, invstd)
        : ops.batchNormBackward(x.value, dy, gamma.value, mean, invstd),
  );
}

/**
 * `relu(batchNorm(x) + r)` with batch statistics in one op (a residual block's
 * output); updates the running statistics in place. Backward: the ReLU mask
 * on dy gives the residual's gradient, and the batch norm backward of it x's
 * (one op, the masking in the pass that takes the batch norm's sums).
 */
export function batchNormAddReluTrain(
  x: Var,
  gamma: Var,
  beta: Var,
  r: Var,
  stats: ops.RunningStats,
  batch?: ops.BatchStats,
): Var {
  const [y, mean, invstd] = ops.batchNormAddReluTrain(
    x.value,
    gamma.value,
    beta.value,
    r.value,
    stats,
    batch,
  );
  return record(
    y,
    [x, gamma, beta, r],
    (dy) => ops.batchNormAddReluBackward(x.value, y, dy, gamma.value, mean, invstd),
  );
}

/**
 * Batch norm with running statistics, then a ReLU if `relu` (evaluation mode). Only
 * the input's gradient is kept, and only when x needs one (an attack on a frozen
 * model): `dy * gamma / sqrt(var + eps)`, masked by the ReLU.
 */
export function batchNormEval(
  x: Var,
  gamma: Var,
  beta: Var,
  stats: ops.RunningStats,
  relu = false,
): Var {
  const y = ops.batchNormEval(x.value, gamma.value, beta.value, stats, relu);
  if (!x.requiresGrad) return Var.constant(y);
  return new Var(y, true, [x], (dy) => {
    const g = relu ? ops.reluBackward(y, dy) : dy;
    const zeros = ops.zeros(stats.mean.shape);
    return [ops.batchNormEval(g, gamma.value, zeros, { ...stats, mean: zeros })];
  });
}

/**
 * A bias-free convolution, then evaluation-mode batch norm folded into it, then `residual`
 * added if given and a ReLU if `relu`, in one op (see {@linkcode ops.conv2dBnEval}); no
 * gradient kept, unless x (or the residual) needs one: then the separate ops, with the
 * input gradient of {@linkcode batchNormEval}.
 */
export function conv2dBnEval(
  x: Var,
  w: Var,
  gamma: Var,
  beta: Var,
  stats: ops.RunningStats,
  o: ops.Conv2dOptions & { relu?: boolean; residual?: Var },
): Var {
  if (x.requiresGrad || o.residual?.requiresGrad) {
    // An input gradient is wanted: the unfused ops, which keep it.
    const c = conv2d(x, w, undefined, { stride: o.stride, padding: o.padding });
    const bn = batchNormEval(c, gamma, beta, stats, o.relu === true && !o.residual);
    if (!o.residual) return bn;
    return o.relu ? addRelu(bn, o.residual) : add(bn, o.residual);
  }
  return Var.constant(
    ops.conv2dBnEval(x.value, w.value, gamma.value, beta.value, stats, {
      stride: o.stride,
      padding: o.padding,
      relu: o.relu,
      residual: o.residual?.value,
    }),
  );
}
