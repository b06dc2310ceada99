/**
 * A training step's loss and its logged parts, kept on the device until the
 * step reads them all in one download (on a GPU, each read is a queue sync).
 *
 * @module
 */
import type { Var } from "../../compute/autograd.ts";
import * as ops from "../../compute/ops.ts";
import type { Tensor } from "../../compute/tensor.ts";

/** The numbers a step logs. */
export interface LossValues {
  /** The loss that was differentiated. */
  loss: number;
  /** Classification loss summed over the batch. */
  classification: number;
  /** Robustness loss summed over the kept images (0 without a robustness term). */
  robustness: number;
  /** Images that entered the robustness loss. */
  kept: number;
}

const asOne = (t: Tensor): Tensor => ops.reshape(t, [1]);

/** [classification, robustness, kept] as one device tensor [3], from one-element tensors. */
export function lossParts(classification: Tensor, robustness: Tensor, kept: Tensor): Tensor {
  return ops.concat([asOne(classification), asOne(robustness), asOne(kept)]);
}

/** The loss and its parts, in one read from the device. */
export function readLossValues(loss: Var, parts: Tensor): LossValues {
  const [total, classification, robustness, kept] = ops.concat([asOne(loss.value), parts]).toF32();
  return { loss: total, classification, robustness, kept };
}
