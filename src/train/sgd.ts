/**
 * SGD with momentum and weight decay (torch.optim.SGD semantics) and the
 * multi-step learning-rate schedule (torch.optim.lr_scheduler.MultiStepLR).
 *
 * @module
 */
import { sgdSteps, zeros } from "../../compute/ops.ts";
import type { Tensor } from "../../compute/tensor.ts";
import type { Parameter } from "../nn/module.ts";

export interface SgdConfig {
  lr: number;
  momentum?: number;
  weightDecay?: number;
  dampening?: number;
  nesterov?: boolean;
}

export class SGD {
  readonly params: readonly Parameter[];
  lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  /** Momentum buffers, one per parameter, created on the first step. */
  buffers: Tensor[] | null = null;

  constructor(params: readonly Parameter[], c: SgdConfig) {
    if (!(c.lr >= 0)) throw new RangeError(`lr must be >= 0, got ${c.lr}`);
    this.params = params;
    this.lr = c.lr;
    this.momentum = c.momentum ?? 0;
    this.weightDecay = c.weightDecay ?? 0;
    this.dampening = c.dampening ?? 0;
    this.nesterov = c.nesterov ?? false;
  }

  /** Updates every parameter that has a gradient, in place. */
  step(): void {
    const first = this.buffers === null;
    this.buffers ??= this.params.map((p) => zeros(p.value.shape).keep());
    const o = {
      lr: this.lr,
      momentum: this.momentum,
      weightDecay: this.weightDecay,
      dampening: this.dampening,
      nesterov: this.nesterov,
    };
    const items = this.params.flatMap((p, i) =>
      p.grad === null ? [] : [{ param: p.value, buf: this.buffers![i], grad: p.grad }]
    );
    sgdSteps(items, o, first);
  }

  dispose(): void {
    this.buffers?.forEach((b) => b.dispose());
    this.buffers = null;
  }
}

/** lr = base * gamma^(number of milestones <= epoch), multiplied out milestone by milestone. */
export class MultiStepLR {
  readonly base: number;
  readonly milestones: readonly number[];
  readonly gamma: number;

  constructor(base: number, milestones: readonly number[], gamma = 0.1) {
    this.base = base;
    this.milestones = [...milestones].sort((a, b) => a - b);
    this.gamma = gamma;
  }

  /** The learning rate for `epoch`, counted as PyTorch's scheduler counts its steps. */
  lrAt(epoch: number): number {
    // PyTorch multiplies the current rate by gamma at each milestone; the same order of
    // float operations gives the same rates to the last bit (0.01 -> 0.001 -> 0.0001).
    let lr = this.base;
    for (const m of this.milestones) if (m <= epoch) lr *= this.gamma;
    return lr;
  }
}
