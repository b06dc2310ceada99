/**
 * Conv2d, BatchNorm2d and Linear with PyTorch's parameter layout, names and
 * default initialisation.
 *
 * @module
 */
import type { Var } from "../../compute/autograd.ts";
import * as F from "../../compute/functional.ts";
import { type BatchStats, full, type RunningStats } from "../../compute/ops.ts";
import { Tensor } from "../../compute/tensor.ts";
import { defaultBound, type InitRng } from "./init.ts";
import { bufferEntry, Module, Parameter, parameterEntry, type StateEntry } from "./module.ts";

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  bias?: boolean;
  /** Standard deviation of a normal init for the weight; PyTorch's uniform default if absent. */
  weightStd?: number;
}

export class Conv2d extends Module {
  readonly weight: Parameter;
  readonly bias?: Parameter;
  readonly stride: number;
  readonly padding: number;

  constructor(rng: InitRng, cin: number, cout: number, kernel: number, o: Conv2dOptions = {}) {
    super();
    this.stride = o.stride ?? 1;
    this.padding = o.padding ?? 0;
    const fanIn = cin * kernel * kernel;
    const n = cout * fanIn;
    const w = o.weightStd === undefined
      ? rng.uniform(n, defaultBound(fanIn))
      : rng.normal(n, o.weightStd);
    this.weight = new Parameter(Tensor.fromF32(w, [cout, cin, kernel, kernel]));
    if (o.bias ?? true) {
      this.bias = new Parameter(Tensor.fromF32(rng.uniform(cout, defaultBound(fanIn)), [cout]));
    }
  }

  forward(x: Var): Var {
    return F.conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }

  protected override ownParameters(): [string, Parameter][] {
    return this.bias ? [["weight", this.weight], ["bias", this.bias]] : [["weight", this.weight]];
  }

  protected override ownState(): StateEntry[] {
    return this.ownParameters().map(([n, p]) => parameterEntry(n, p));
  }
}

export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;

  constructor(rng: InitRng, fin: number, fout: number) {
    super();
    const bound = defaultBound(fin);
    this.weight = new Parameter(Tensor.fromF32(rng.uniform(fin * fout, bound), [fout, fin]));
    this.bias = new Parameter(Tensor.fromF32(rng.uniform(fout, bound), [fout]));
  }

  forward(x: Var): Var {
    return F.linear(x, this.weight, this.bias);
  }

  protected override ownParameters(): [string, Parameter][] {
    return [["weight", this.weight], ["bias", this.bias]];
  }

  protected override ownState(): StateEntry[] {
    return this.ownParameters().map(([n, p]) => parameterEntry(n, p));
  }
}

/** BatchNorm2d: momentum 0.1, eps 1e-5, weight 1, bias 0, running mean 0, var 1. */
export class BatchNorm2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  numBatchesTracked = 0;
  readonly momentum = 0.1;
  readonly eps = 1e-5;

  constructor(channels: number) {
    super();
    this.weight = new Parameter(full([channels], 1));
    this.bias = new Parameter(full([channels], 0));
    this.runningMean = full([channels], 0).keep();
    this.runningVar = full([channels], 1).keep();
  }

  forward(x: Var): Var {
    return this.apply(x, false);
  }

  /** `relu(forward(x))` through the fused batch norm + ReLU kernels. */
  forwardRelu(x: Var): Var {
    return this.apply(x, true);
  }

  /** The running statistics and constants, as the batch-norm ops take them. */
  runningStats(): RunningStats {
    return {
      mean: this.runningMean,
      variance: this.runningVar,
      momentum: this.momentum,
      eps: this.eps,
    };
  }

  /**
   * Training mode: batch norm of x given its batch statistics (as
   * {@linkcode F.conv2dStats} returns them), then `residual` added if given
   * (only before a ReLU), then a ReLU if `relu`, in one op.
   */
  trainWith(x: Var, batch: BatchStats, o: { relu?: boolean; residual?: Var } = {}): Var {
    if (!this.training) throw new Error("BatchNorm2d.trainWith needs training mode");
    this.numBatchesTracked++;
    const [w, b, stats] = [this.weight, this.bias, this.runningStats()];
    if (o.residual) {
      if (!o.relu) {
        throw new Error("trainWith: a residual is summed only before a ReLU (relu: true)");
      }
      return F.batchNormAddReluTrain(x, w, b, o.residual, stats, batch);
    }
    return F.batchNormTrain(x, w, b, stats, o.relu ?? false, batch);
  }

  /**
   * Training mode: `conv(relu(this(x)))` given x's batch statistics, the batch norm +
   * ReLU applied as the convolution reads x (never written out); returns the output
   * and its batch statistics. `conv` must have no bias.
   */
  reluConvTrain(x: Var, batch: BatchStats, conv: Conv2d): { y: Var; stats: BatchStats } {
    if (!this.training || conv.bias) {
      throw new Error("reluConvTrain needs training mode and a bias-free convolution");
    }
    this.numBatchesTracked++;
    return F.bnReluConv2dStats(x, this.weight, this.bias, this.runningStats(), batch, conv.weight, {
      stride: conv.stride,
      padding: conv.padding,
    });
  }

  /**
   * Training mode: `conv` and this batch norm after it, as the fused residual block
   * takes them ({@linkcode F.residualBlockTrain}, which updates the running
   * statistics). `conv` must have no bias.
   */
  afterConvTrain(conv: Conv2d): F.ConvBn {
    if (!this.training || conv.bias) {
      throw new Error("afterConvTrain needs training mode and a bias-free convolution");
    }
    this.numBatchesTracked++;
    return {
      w: conv.weight,
      o: { stride: conv.stride, padding: conv.padding },
      gamma: this.weight,
      beta: this.bias,
      running: this.runningStats(),
    };
  }

  private apply(x: Var, relu: boolean): Var {
    const stats = this.runningStats();
    if (!this.training) return F.batchNormEval(x, this.weight, this.bias, stats, relu);
    this.numBatchesTracked++;
    return F.batchNormTrain(x, this.weight, this.bias, stats, relu);
  }

  protected override ownParameters(): [string, Parameter][] {
    return [["weight", this.weight], ["bias", this.bias]];
  }

  protected override ownState(): StateEntry[] {
    return [
      parameterEntry("weight", this.weight),
      parameterEntry("bias", this.bias),
      bufferEntry("running_mean", this.runningMean),
      bufferEntry("running_var", this.runningVar),
      {
        name: "num_batches_tracked",
        kind: "buffer",
        dtype: "i64",
        shape: [],
        read: () => BigInt64Array.of(BigInt(this.numBatchesTracked)),
        write: (d) => {
          this.numBatchesTracked = Number((d as BigInt64Array)[0]);
        },
      },
    ];
  }
}

/**
 * `bn(conv(x))`, then `residual` added if given, then a ReLU if `relu` (a residual needs
 * `relu` in training). Training: the convolution hands its output's batch statistics to the batch
 * norm, which applies them, the residual and the ReLU in one pass. Evaluation (bias-free
 * `conv` only): one op that folds the batch norm into the convolution.
 */
export function convBn(
  conv: Conv2d,
  bn: BatchNorm2d,
  x: Var,
  o: { relu?: boolean; residual?: Var } = {},
): Var {
  if (!bn.training) return convBnEval(conv, bn, x, o);
  const { y, stats } = F.conv2dStats(x, conv.weight, conv.bias, {
    stride: conv.stride,
    padding: conv.padding,
  });
  return bn.trainWith(y, stats, o);
}

/**
 * `bn(conv(x))` for a bias-free `conv` and a `bn` in evaluation mode, then `residual` added if
 * given and a ReLU if `relu`, as one op that folds the batch norm into the convolution.
 */
export function convBnEval(
  conv: Conv2d,
  bn: BatchNorm2d,
  x: Var,
  o: { relu?: boolean; residual?: Var } = {},
): Var {
  if (bn.training || conv.bias) throw new Error("convBnEval needs eval-mode BN and no conv bias");
  return F.conv2dBnEval(x, conv.weight, bn.weight, bn.bias, bn.runningStats(), {
    stride: conv.stride,
    padding: conv.padding,
    ...o,
  });
}
