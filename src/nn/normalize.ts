/**
 * Cohen et al.'s input normalisation as part of a model: `(x - mean) / std`
 * per channel, then the wrapped network, as their `Sequential(NormalizeLayer,
 * model)` does. The layer has no state, so the network's state-dict names
 * carry the `1.` prefix of that `Sequential` (`1.conv1.weight`) and a
 * checkpoint of theirs loads as it is.
 *
 * @module
 */
import { Var } from "../../compute/autograd.ts";
import * as F from "../../compute/functional.ts";
import { full } from "../../compute/ops.ts";
import { Tensor } from "../../compute/tensor.ts";
import { Module, type Parameter, type StateEntry } from "./module.ts";

/** CIFAR-10's channel means, as Cohen et al.'s `datasets.py` normalises. */
export const CIFAR10_MEAN: readonly number[] = [0.4914, 0.4822, 0.4465];
/** CIFAR-10's channel standard deviations, as Cohen et al.'s `datasets.py` normalises. */
export const CIFAR10_STD: readonly number[] = [0.2023, 0.1994, 0.2010];
/** ImageNet's channel means, as Cohen et al.'s `datasets.py` normalises. */
export const IMAGENET_MEAN: readonly number[] = [0.485, 0.456, 0.406];
/** ImageNet's channel standard deviations, as Cohen et al.'s `datasets.py` normalises. */
export const IMAGENET_STD: readonly number[] = [0.229, 0.224, 0.225];

/** A network with a fixed per-channel normalisation of its input in front. */
export class Normalized extends Module {
  readonly net: Module;
  readonly mean: readonly number[];
  readonly std: readonly number[];
  readonly #ones: Tensor;
  readonly #zeros: Tensor;
  readonly #mean: Tensor;
  readonly #variance: Tensor;
  readonly #prefixed: boolean;

  /**
   * @param net the network that sees the normalised input
   * @param mean per-channel means
   * @param std per-channel standard deviations (> 0)
   * @param prefixed whether state-dict names carry the `Sequential`'s `1.` (Cohen's
   *   checkpoints) or are the bare network's (a plain torchvision state dict)
   */
  constructor(net: Module, mean: readonly number[], std: readonly number[], prefixed = true) {
    super();
    this.#prefixed = prefixed;
    if (mean.length !== std.length || !std.every((s) => s > 0)) {
      throw new RangeError("mean and std need one entry per channel, std > 0");
    }
    this.net = net;
    this.mean = mean;
    this.std = std;
    const c = mean.length;
    this.#ones = full([c], 1).keep();
    this.#zeros = full([c], 0).keep();
    this.#mean = Tensor.fromF32(Float32Array.from(mean), [c]).keep();
    this.#variance = Tensor.fromF32(Float32Array.from(std, (s) => s * s), [c]).keep();
  }

  forward(x: Var): Var {
    // (x - mean) / sqrt(std^2): evaluation-mode batch norm with eps 0, weight 1, bias 0.
    const stats = { mean: this.#mean, variance: this.#variance, momentum: 0, eps: 0 };
    // A gradient flows to the input only when it needs one (an attack on the input).
    const h = F.batchNormEval(x, Var.constant(this.#ones), Var.constant(this.#zeros), stats);
    return this.net.forward(h);
  }

  protected override children(): [string, Module][] {
    return [["1", this.net]];
  }

  override stateEntries(prefix = ""): StateEntry[] {
    return this.#prefixed ? super.stateEntries(prefix) : this.net.stateEntries(prefix);
  }

  override namedParameters(prefix = ""): [string, Parameter][] {
    return this.#prefixed ? super.namedParameters(prefix) : this.net.namedParameters(prefix);
  }
}
