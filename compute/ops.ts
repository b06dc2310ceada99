/**
 * Typed wrappers over the library's op table (`compute/src/ops/mod.rs`).
 * No autograd here: these run on any device and return new tensors.
 *
 * @module
 */
import { check, lib } from "./ffi.ts";
import { currentDevice, DEVICE_CODE } from "./device.ts";
import { adopt, Tensor } from "./tensor.ts";

const names = new Map<string, Uint8Array>();
/** Input handles of one call, grown to the longest input list seen. */
let handleBuffer = new Uint32Array(16);
const outBuffer = new Uint32Array(16);
/** Each output's `[dtype, device, ndim, dims...]`, one after another. */
const infoBuffer = new Uint32Array(16 * 8);

/** Per-op call counts and milliseconds, collected when MACER_PROFILE=1. */
const profile = Deno.env.get("MACER_PROFILE") === "1" ? new Map<string, [number, number]>() : null;
if (profile) globalThis.addEventListener("unload", () => printProfile(profile));

function printProfile(table: Map<string, [number, number]>): void {
  const rows = [...table].sort((a, b) => b[1][1] - a[1][1]);
  const total = rows.reduce((s, [, [, ms]]) => s + ms, 0);
  console.error(`op profile: ${total.toFixed(0)} ms in ops`);
  for (const [op, [calls, ms]] of rows) {
    const share = ((100 * ms) / total).toFixed(1).padStart(5);
    console.error(
      `  ${op.padEnd(22)} ${String(calls).padStart(7)} calls ${
        ms.toFixed(1).padStart(10)
      } ms ${share}%`,
    );
  }
}

/** Runs op `name`; returns its outputs. */
export function run(
  name: string,
  inputs: readonly Tensor[],
  params: readonly number[] = [],
): Tensor[] {
  if (profile === null) return runOp(name, inputs, params);
  const t0 = performance.now();
  const out = runOp(name, inputs, params);
  const entry = profile.get(name) ?? [0, 0];
  entry[0]++;
  entry[1] += performance.now() - t0;
  profile.set(name, entry);
  return out;
}

function runOp(name: string, inputs: readonly Tensor[], params: readonly number[]): Tensor[] {
  let encoded = names.get(name);
  if (encoded === undefined) {
    encoded = new TextEncoder().encode(name);
    names.set(name, encoded);
  }
  if (inputs.length > handleBuffer.length) handleBuffer = new Uint32Array(inputs.length);
  for (let i = 0; i < inputs.length; i++) handleBuffer[i] = inputs[i].handle;
  const n = check(
    lib.cm_run(
      encoded,
      BigInt(encoded.length),
      handleBuffer,
      inputs.length,
      Float64Array.from(params),
      params.length,
      DEVICE_CODE[currentDevice()],
      outBuffer,
      outBuffer.length,
      infoBuffer,
      infoBuffer.length,
    ),
  );
  const out: Tensor[] = [];
  let offset = 0;
  for (let i = 0; i < n; i++) {
    const [tensor, next] = adopt(outBuffer[i], infoBuffer, offset);
    out.push(tensor);
    offset = next;
  }
  return out;
}

const one = (name: string, inputs: readonly Tensor[], params: readonly number[] = []): Tensor =>
  run(name, inputs, params)[0];

export const add = (a: Tensor, b: Tensor): Tensor => one("add", [a, b]);
export const sub = (a: Tensor, b: Tensor): Tensor => one("sub", [a, b]);
export const mul = (a: Tensor, b: Tensor): Tensor => one("mul", [a, b]);
/** `scale * x + shift` */
export const affine = (x: Tensor, scale: number, shift = 0): Tensor =>
  one("affine", [x], [scale, shift]);
export const relu = (x: Tensor): Tensor => one("relu", [x]);
export const reluBackward = (y: Tensor, dy: Tensor): Tensor => one("relu_backward", [y, dy]);
/** `max(a + b, 0)` in one pass; its backward is `reluBackward` of the output. */
export const addRelu = (a: Tensor, b: Tensor): Tensor => one("add_relu", [a, b]);
export const log = (x: Tensor): Tensor => one("log", [x]);
export const logBackward = (x: Tensor, dy: Tensor): Tensor => one("log_backward", [x, dy]);
/** Elementwise square root. */
export const sqrt = (x: Tensor): Tensor => one("sqrt", [x]);
/** Elementwise `1 / x`. */
export const recip = (x: Tensor): Tensor => one("recip", [x]);
/** The standard normal quantile Phi^-1, elementwise. */
export const ndtri = (p: Tensor): Tensor => one("ndtri", [p]);
export const ndtriBackward = (y: Tensor, dy: Tensor): Tensor => one("ndtri_backward", [y, dy]);
/** New shape with the same elements; one dim may be -1. */
export const reshape = (x: Tensor, shape: readonly number[]): Tensor => one("reshape", [x], shape);
export const full = (shape: readonly number[], value: number): Tensor =>
  one("full", [], [value, ...shape]);
export const zeros = (shape: readonly number[]): Tensor => full(shape, 0);
/** The tensors one after another along dim 0 (same dtype, same other dims). */
export const concat = (xs: readonly Tensor[]): Tensor => one("concat", xs);
/** In place: `dst = src` (same shape and dtype). */
export const copyInto = (dst: Tensor, src: Tensor): void => void run("copy_", [dst, src]);

export const sumDim = (x: Tensor, dim: number, scale = 1): Tensor =>
  one("sum_dim", [x], [dim, scale]);
export const expandDim = (x: Tensor, dim: number, size: number, scale = 1): Tensor =>
  one("expand_dim", [x], [dim, size, scale]);
export const sumAll = (x: Tensor): Tensor => one("sum_all", [x]);

/** `softmax(scale * x)` along `dim`. */
export const softmax = (x: Tensor, dim: number, scale = 1): Tensor =>
  one("softmax", [x], [dim, scale]);
export const softmaxBackward = (y: Tensor, dy: Tensor, dim: number, scale = 1): Tensor =>
  one("softmax_backward", [y, dy], [dim, scale]);
export const logSoftmax = (x: Tensor, dim: number, scale = 1): Tensor =>
  one("log_softmax", [x], [dim, scale]);
export const logSoftmaxBackward = (y: Tensor, dy: Tensor, dim: number, scale = 1): Tensor =>
  one("log_softmax_backward", [y, dy], [dim, scale]);

/** `out[r, j] = x[r, idx[r, j]]` */
export const gatherRows = (x: Tensor, idx: Tensor): Tensor => one("gather_rows", [x, idx]);
export const scatterRows = (d: Tensor, idx: Tensor, columns: number): Tensor =>
  one("scatter_rows", [d, idx], [columns]);
/**
 * MACER's keep mask [n, 1]: 1 where an image's top class (top i32 [n, 2]) is
 * its label (i32 [n, 1]) and the gap `q[:, 1] - q[:, 0]` of q = Phi^-1 of its
 * two largest smoothed probabilities [n, 2] is finite with |gap| <= gamma.
 */
export const macerKeep = (q: Tensor, top: Tensor, labels: Tensor, gamma: number): Tensor =>
  one("macer_keep", [q, top, labels], [gamma]);
/** Two largest values per row and their (i32) columns. */
export const topk2 = (x: Tensor): [Tensor, Tensor] => run("topk2", [x]) as [Tensor, Tensor];
export const indexSelect = (x: Tensor, idx: Tensor): Tensor => one("index_select", [x, idx]);
export const indexAdd = (d: Tensor, idx: Tensor, rows: number): Tensor =>
  one("index_add", [d, idx], [rows]);

export const linear = (x: Tensor, w: Tensor, b?: Tensor): Tensor =>
  one("linear", b ? [x, w, b] : [x, w]);
/** Returns [dx, dw, db]. */
export const linearBackward = (x: Tensor, w: Tensor, dy: Tensor): [Tensor, Tensor, Tensor] =>
  run("linear_backward", [x, w, dy]) as [Tensor, Tensor, Tensor];

export interface Conv2dOptions {
  stride: number;
  padding: number;
}
export const conv2d = (x: Tensor, w: Tensor, b: Tensor | undefined, o: Conv2dOptions): Tensor =>
  one("conv2d", b ? [x, w, b] : [x, w], [o.stride, o.padding]);
/**
 * {@linkcode conv2d} that also returns the batch mean and biased variance of
 * each output channel: [y, mean, var], as {@linkcode batchNormTrain} takes them.
 */
export const conv2dStats = (
  x: Tensor,
  w: Tensor,
  b: Tensor | undefined,
  o: Conv2dOptions,
  prologue?: Prologue,
): [Tensor, Tensor, Tensor] =>
  run(
    "conv2d",
    [x, w, ...(b ? [b] : []), ...(prologue ?? [])],
    [o.stride, o.padding, 1, prologue ? 1 : 0],
  ) as [Tensor, Tensor, Tensor];
/**
 * Per input channel `[scale, shift]`: a convolution given one reads
 * `max(x * scale + shift, 0)` in place of x (a batch norm + ReLU never written out).
 */
export type Prologue = readonly [scale: Tensor, shift: Tensor];
/**
 * A bias-free convolution followed by evaluation-mode batch norm with the running statistics in
 * `s`, folded into it per call, then `residual` added (same shape as the output) if given and a
 * ReLU if `relu`; the batch norm, the sum and the ReLU are applied as the convolution writes
 * its output. Equals {@linkcode conv2d} then {@linkcode batchNormEval} (then
 * {@linkcode addRelu}) up to float rounding.
 */
export const conv2dBnEval = (
  x: Tensor,
  w: Tensor,
  gamma: Tensor,
  beta: Tensor,
  s: RunningStats,
  o: Conv2dOptions & { relu?: boolean; residual?: Tensor },
): Tensor =>
  one(
    "conv2d_bn_eval",
    o.residual
      ? [x, w, gamma, beta, s.mean, s.variance, o.residual]
      : [x, w, gamma, beta, s.mean, s.variance],
    [o.stride, o.padding, s.eps, o.relu ? 1 : 0],
  );
/**
 * Returns dx (if needDx), dw and db (if withBias). With `dxAcc` (a gradient
 * already collected for x; needs needDx), dx comes back with it added.
 */
export function conv2dBackward(
  x: Tensor,
  w: Tensor,
  dy: Tensor,
  o: Conv2dOptions & { withBias: boolean; needDx: boolean; dxAcc?: Tensor },
): { dx?: Tensor; dw: Tensor; db?: Tensor } {
  const out = run("conv2d_backward", o.dxAcc ? [x, w, dy, o.dxAcc] : [x, w, dy], [
    o.stride,
    o.padding,
    o.withBias ? 1 : 0,
    o.needDx ? 1 : 0,
  ]);
  const dx = o.needDx ? out.shift() : undefined;
  return { dx, dw: out[0], db: o.withBias ? out[1] : undefined };
}

/**
 * Backward of `conv2d(relu(batchNorm(z)), w)` whose batch norm + ReLU was the
 * convolution's prologue (`bn` as {@linkcode batchNormTrainAffine} returns it): the
 * convolution's gradients, then the batch norm + ReLU backward, in one op. Returns
 * [dz, dw, dgamma, dbeta].
 */
export const bnReluConv2dBackward = (
  z: Tensor,
  w: Tensor,
  dy: Tensor,
  gamma: Tensor,
  beta: Tensor,
  bn: readonly [mean: Tensor, invstd: Tensor, scale: Tensor, shift: Tensor],
  o: Conv2dOptions,
): [Tensor, Tensor, Tensor, Tensor] =>
  run("bn_relu_conv2d_backward", [z, w, dy, gamma, beta, ...bn], [o.stride, o.padding]) as [
    Tensor,
    Tensor,
    Tensor,
    Tensor,
  ];
/**
 * Backward of a residual block with an identity shortcut in training mode,
 * `out = relu(bn2(conv2(relu(bn1(conv1(x))))) + x)` with bn1 + ReLU as conv2's
 * {@linkcode Prologue}, in one op: neither batch norm's input gradient is written out
 * (each is computed group by group as the convolution backward after it reads it).
 * `bn1` is as {@linkcode batchNormTrainAffine} returns it. `grad` is the output's
 * gradient with the output, or what the next block's op returned for it (`dr` and
 * bn2's `dgamma2`, `dbeta2`). Returns [dx, dw1, dgamma1, dbeta1, dw2, dgamma2, dbeta2],
 * `dx` including `o.dxAcc` (a gradient already collected for x); with `o.previous`
 * (the previous block's bn2 input and statistics) the first entry is instead that
 * block's [dr, dgamma2, dbeta2], for its own op.
 */
export const residualBlockBackward = (
  t: { x: Tensor; w1: Tensor; z1: Tensor; w2: Tensor; z2: Tensor },
  bn1: {
    gamma: Tensor;
    affine: readonly [mean: Tensor, invstd: Tensor, scale: Tensor, shift: Tensor];
  },
  bn2: { gamma: Tensor; mean: Tensor; invstd: Tensor },
  grad: BlockGrad,
  o: {
    conv1: Conv2dOptions;
    conv2: Conv2dOptions;
    dxAcc?: Tensor;
    previous?: { z2: Tensor; mean: Tensor; invstd: Tensor };
  },
): Tensor[] => {
  const chainedIn = "dr" in grad;
  const incoming = chainedIn ? [grad.dr, grad.dgamma2, grad.dbeta2] : [grad.out, grad.dout];
  const p = o.previous;
  const outgoing = p ? [p.z2, p.mean, p.invstd] : o.dxAcc ? [o.dxAcc] : [];
  return run(
    "residual_block_backward",
    [
      t.x,
      t.w1,
      t.z1,
      t.w2,
      t.z2,
      bn1.gamma,
      ...bn1.affine,
      bn2.gamma,
      bn2.mean,
      bn2.invstd,
      ...incoming,
      ...outgoing,
    ],
    [
      o.conv1.stride,
      o.conv1.padding,
      o.conv2.stride,
      o.conv2.padding,
      chainedIn ? 1 : 0,
      p ? 1 : 0,
    ],
  );
};
/**
 * A residual block's output gradient as {@linkcode residualBlockBackward} takes it: with
 * the output, or as the next block's op returned it.
 */
export type BlockGrad =
  | { out: Tensor; dout: Tensor }
  | { dr: Tensor; dgamma2: Tensor; dbeta2: Tensor };
/** Returns [y, argmax indices]. */
export const maxPool2d = (x: Tensor, kernel: number, stride: number): [Tensor, Tensor] =>
  run("max_pool2d", [x], [kernel, stride]) as [Tensor, Tensor];
export const maxPool2dBackward = (
  dy: Tensor,
  idx: Tensor,
  kernel: number,
  stride: number,
  h: number,
  w: number,
): Tensor => one("max_pool2d_backward", [dy, idx], [kernel, stride, h, w]);
export const avgPool2d = (x: Tensor, kernel: number, stride: number): Tensor =>
  one("avg_pool2d", [x], [kernel, stride]);
export const avgPool2dBackward = (
  dy: Tensor,
  kernel: number,
  stride: number,
  h: number,
  w: number,
): Tensor => one("avg_pool2d_backward", [dy], [kernel, stride, h, w]);

/** Batch norm's running statistics and constants (PyTorch: momentum 0.1, eps 1e-5). */
export interface RunningStats {
  mean: Tensor;
  variance: Tensor;
  momentum: number;
  eps: number;
}

/** The batch mean and biased variance of each channel of x, as {@linkcode conv2dStats} returns them. */
export type BatchStats = readonly [mean: Tensor, variance: Tensor];

/**
 * Batch norm with batch statistics, then a ReLU if `relu` (same passes). Updates the
 * running statistics in place; returns [y, batch mean, batch inverse std]. With `batch`
 * (x's statistics, already computed) it skips its own pass over x to compute them.
 */
export const batchNormTrain = (
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  s: RunningStats,
  relu = false,
  batch?: BatchStats,
): [Tensor, Tensor, Tensor] =>
  run(
    relu ? "batch_norm_relu_train" : "batch_norm_train",
    [s.mean, s.variance, x, gamma, beta, ...(batch ?? [])],
    [s.momentum, s.eps, batch ? 1 : 0],
  ) as [Tensor, Tensor, Tensor];
/**
 * {@linkcode batchNormTrain} plus a residual `r` (shaped like x), then a ReLU:
 * `max(bn(x) + r, 0)` in one pass. Returns [y, batch mean, batch inverse std].
 */
export const batchNormAddReluTrain = (
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  r: Tensor,
  s: RunningStats,
  batch?: BatchStats,
): [Tensor, Tensor, Tensor] =>
  run("batch_norm_add_relu_train", [s.mean, s.variance, x, gamma, beta, r, ...(batch ?? [])], [
    s.momentum,
    s.eps,
    batch ? 1 : 0,
  ]) as [Tensor, Tensor, Tensor];
/**
 * A training-mode batch norm that a convolution applies as its {@linkcode Prologue}:
 * updates the running statistics from `batch` (x's statistics, `count` elements per
 * channel) and returns [batch mean, batch inverse std, scale, shift].
 */
export const batchNormTrainAffine = (
  gamma: Tensor,
  beta: Tensor,
  s: RunningStats,
  batch: BatchStats,
  count: number,
): [Tensor, Tensor, Tensor, Tensor] =>
  run("batch_norm_train_affine", [s.mean, s.variance, gamma, beta, ...batch], [
    s.momentum,
    s.eps,
    count,
  ]) as [Tensor, Tensor, Tensor, Tensor];
/** Batch norm with the running statistics, then a ReLU if `relu` (one pass). */
export const batchNormEval = (
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  s: RunningStats,
  relu = false,
): Tensor =>
  one(relu ? "batch_norm_relu_eval" : "batch_norm_eval", [x, gamma, beta, s.mean, s.variance], [
    s.eps,
  ]);
/**
 * Backward of {@linkcode batchNormTrain} with `relu`: the ReLU mask (recomputed from x) on dy, then
 * the batch norm backward. Returns [dx, dgamma, dbeta].
 */
export const batchNormReluBackward = (
  x: Tensor,
  dy: Tensor,
  gamma: Tensor,
  beta: Tensor,
  mean: Tensor,
  invstd: Tensor,
): [Tensor, Tensor, Tensor] =>
  run("batch_norm_relu_backward", [x, dy, gamma, beta, mean, invstd]) as [Tensor, Tensor, Tensor];
/**
 * Backward of {@linkcode batchNormAddReluTrain} given its output y: returns
 * [dx, dgamma, dbeta, dr], dr (dy where y > 0, else 0) being the residual's gradient.
 */
export const batchNormAddReluBackward = (
  x: Tensor,
  y: Tensor,
  dy: Tensor,
  gamma: Tensor,
  mean: Tensor,
  invstd: Tensor,
): [Tensor, Tensor, Tensor, Tensor] =>
  run("batch_norm_add_relu_backward", [x, y, dy, gamma, mean, invstd]) as [
    Tensor,
    Tensor,
    Tensor,
    Tensor,
  ];
/** Returns [dx, dgamma, dbeta]. */
export const batchNormBackward = (
  x: Tensor,
  dy: Tensor,
  gamma: Tensor,
  mean: Tensor,
  invstd: Tensor,
): [Tensor, Tensor, Tensor] =>
  run("batch_norm_backward", [x, dy, gamma, mean, invstd]) as [Tensor, Tensor, Tensor];

/** Standard normals at positions offset.. of Philox stream `seed` (offset % 4 == 0). */
export const randn = (shape: readonly number[], seed: number, offset: number): Tensor =>
  one("randn", [], [seed, offset, ...shape]);
/** Each row of x repeated k times plus sigma * N(0, 1) noise. */
export const tileNoise = (x: Tensor, k: number, sigma: number, seed: number, offset: number) =>
  one("tile_noise", [x], [k, sigma, seed, offset]);

/** Per-class argmax counts of logits [m, C]. */
export const argmaxCounts = (logits: Tensor): Tensor => one("argmax_counts", [logits]);
/** [2, C]: sums and sums of squares of softmax(beta * logits). */
export const softmaxStats = (logits: Tensor, beta: number): Tensor =>
  one("softmax_stats", [logits], [beta]);

export interface SgdOptions {
  lr: number;
  momentum: number;
  weightDecay: number;
  dampening: number;
  nesterov: boolean;
}
/**
 * One SGD step in place on each `param` and its momentum `buf`, PyTorch's
 * torch.optim.SGD update; one call for all of a model's tensors (the threads share
 * them out).
 */
export function sgdSteps(
  items: readonly { param: Tensor; buf: Tensor; grad: Tensor }[],
  o: SgdOptions,
  firstStep: boolean,
): void {
  if (items.length === 0) return;
  run("sgd_step", [...items.flatMap((t) => [t.param, t.buf]), ...items.map((t) => t.grad)], [
    o.lr,
    o.momentum,
    o.weightDecay,
    o.dampening,
    o.nesterov ? 1 : 0,
    firstStep ? 1 : 0,
  ]);
}
