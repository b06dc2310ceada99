/**
 * Modules, parameters and state dicts with PyTorch's key names.
 *
 * @module
 */
import { Var } from "../../compute/autograd.ts";
import { copyInto } from "../../compute/ops.ts";
import { Tensor } from "../../compute/tensor.ts";

/** A trainable tensor: a graph leaf that requires a gradient. */
export class Parameter extends Var {
  constructor(value: Tensor) {
    super(value.keep(), true);
  }

  /** Replaces the values (same shape), e.g. when loading a checkpoint. */
  assign(data: Float32Array): void {
    assignTensor(this.value, data);
  }
}

/** Overwrites a tensor's elements through the library (handles stay valid). */
export function assignTensor(t: Tensor, data: Float32Array): void {
  if (data.length !== t.size) {
    throw new RangeError(`Cannot assign ${data.length} values to a tensor of shape [${t.shape}]`);
  }
  const fresh = Tensor.fromF32(data, t.shape);
  copyInto(t, fresh);
  fresh.dispose();
}

/** One entry of a state dict, in PyTorch's order and naming. */
export interface StateEntry {
  name: string;
  kind: "parameter" | "buffer";
  /** f32 for weights and statistics; i64 for num_batches_tracked. */
  dtype: "f32" | "i64";
  shape: readonly number[];
  read(): Float32Array | BigInt64Array;
  write(data: Float32Array | BigInt64Array): void;
}

/** Base class: subclasses list their children and own entries in PyTorch's order. */
export abstract class Module {
  training = true;

  /** Own parameters and buffers (not children's), in registration order. */
  protected ownState(): StateEntry[] {
    return [];
  }

  /** Named children, in registration order. */
  protected children(): [string, Module][] {
    return [];
  }

  abstract forward(x: Var): Var;

  /** Switches this module and its children between training and evaluation mode. */
  train(mode = true): this {
    this.training = mode;
    for (const [, c] of this.children()) c.train(mode);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Every entry of the state dict with its full dotted name. */
  stateEntries(prefix = ""): StateEntry[] {
    const own = this.ownState().map((e) => ({ ...e, name: prefix + e.name }));
    const kids = this.children().flatMap(([n, c]) => c.stateEntries(`${prefix}${n}.`));
    return [...own, ...kids];
  }

  /** Trainable parameters with their names, in state-dict order. */
  namedParameters(prefix = ""): [string, Parameter][] {
    const own = this.ownParameters().map(([n, p]) => [prefix + n, p] as [string, Parameter]);
    const kids = this.children().flatMap(([n, c]) => c.namedParameters(`${prefix}${n}.`));
    return [...own, ...kids];
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Own parameters; subclasses with parameters override. */
  protected ownParameters(): [string, Parameter][] {
    return [];
  }

  /** Sets every parameter's gradient to none (they are freed by their scope). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** Number of trainable scalars. */
  parameterCount(): number {
    return this.parameters().reduce((n, p) => n + p.value.size, 0);
  }
}

/** State entry for a parameter. */
export function parameterEntry(name: string, p: Parameter): StateEntry {
  return {
    name,
    kind: "parameter",
    dtype: "f32",
    shape: p.value.shape,
    read: () => p.value.toF32(),
    write: (d) => p.assign(d as Float32Array),
  };
}

/** State entry for a float buffer tensor (running statistics). */
export function bufferEntry(name: string, t: Tensor): StateEntry {
  return {
    name,
    kind: "buffer",
    dtype: "f32",
    shape: t.shape,
    read: () => t.toF32(),
    write: (d) => assignTensor(t, d as Float32Array),
  };
}
