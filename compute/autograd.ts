/**
 * Reverse-mode automatic differentiation over {@linkcode Tensor}s.
 *
 * A {@linkcode Var} records the op that made it only when one of its inputs
 * needs a gradient, so inference keeps no saved tensors. Backward functions
 * call the library's explicit backward kernels; nothing here depends on the
 * device.
 *
 * @module
 */
import * as ops from "./ops.ts";
import type { Tensor } from "./tensor.ts";

/**
 * Maps the gradient of an output to the gradients of its parents (null: none
 * needed). `take(i)` hands over the gradient collected so far for parent `i`
 * (removing it): a backward function that takes it must return it summed
 * into parent `i`'s gradient, which saves a separate addition.
 */
export type BackwardFn = (dy: Tensor, take: (i: number) => Tensor | undefined) => (Tensor | null)[];

/** A tensor in the autograd graph. */
export class Var {
  readonly value: Tensor;
  readonly requiresGrad: boolean;
  /** Accumulated gradient, set by {@linkcode backward} on vars that require it. */
  grad: Tensor | null = null;
  readonly parents: readonly Var[];
  readonly backwardFn: BackwardFn | null;

  constructor(value: Tensor, requiresGrad = false, parents: Var[] = [], backwardFn?: BackwardFn) {
    this.value = value;
    this.requiresGrad = requiresGrad;
    this.parents = parents;
    this.backwardFn = backwardFn ?? null;
  }

  get shape(): readonly number[] {
    return this.value.shape;
  }

  /** A graph leaf holding a constant (no gradient). */
  static constant(value: Tensor): Var {
    return new Var(value, false);
  }
}

/**
 * Builds the output of a differentiable op: records `backwardFn` only if some
 * parent needs a gradient.
 */
export function record(value: Tensor, parents: Var[], backwardFn: BackwardFn): Var {
  return parents.some((p) => p.requiresGrad)
    ? new Var(value, true, parents, backwardFn)
    : new Var(value, false);
}

/** Parents in reverse topological order from `root`, over vars that need gradients. */
function order(root: Var): Var[] {
  const seen = new Set<Var>();
  const out: Var[] = [];
  const stack: [Var, boolean][] = [[root, false]];
  while (stack.length > 0) {
    const [v, expanded] = stack.pop()!;
    if (expanded) {
      out.push(v);
      continue;
    }
    if (seen.has(v) || !v.requiresGrad) continue;
    seen.add(v);
    stack.push([v, true]);
    for (const p of v.parents) if (!seen.has(p)) stack.push([p, false]);
  }
  return out.reverse();
}

/**
 * Accumulates d(root)/d(v) into `v.grad` for every leaf `v` that requires a
 * gradient. `root` must hold one element unless `seed` (d root) is given.
 */
export function backward(root: Var, seed?: Tensor): void {
  if (!root.requiresGrad) throw new Error("backward(): the root does not depend on any parameter");
  if (seed === undefined && root.value.size !== 1) {
    throw new RangeError(`backward(): root has shape [${root.shape}]; pass its gradient`);
  }
  const grads = new Map<Var, Tensor>([[root, seed ?? ops.full(root.shape, 1)]]);
  for (const v of order(root)) {
    const g = grads.get(v);
    if (g === undefined) continue;
    grads.delete(v);
    if (v.backwardFn === null) {
      // A leaf: accumulate into its .grad. Not in place: one gradient tensor may be
      // shared by several leaves (add's backward hands dy to both inputs).
      v.grad = v.grad === null ? g : ops.add(v.grad, g);
      continue;
    }
    const take = (i: number) => {
      const p = v.parents[i];
      const pending = grads.get(p);
      grads.delete(p);
      return pending;
    };
    const parentGrads = v.backwardFn(g, take);
    v.parents.forEach((p, i) => {
      const pg = parentGrads[i];
      if (!p.requiresGrad || pg === null || pg === undefined) return;
      const prev = grads.get(p);
      grads.set(p, prev === undefined ? pg : ops.add(prev, pg));
    });
  }
}
