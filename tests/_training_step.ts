/**
 * Training steps run twice under different settings (device, SIMD level) and
 * compared: seeded inputs, a MACER configuration, and the weight updates'
 * difference.
 */
import type { Module } from "../src/nn/module.ts";

/** `n` seeded uniforms in [0, 1) (a linear congruential stream). */
export function seeded(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  });
}

/** A MACER step's settings, small enough for any device. */
export const macer = {
  method: "macer" as const,
  sigma: 0.25,
  gaussNum: 4,
  lbd: 12,
  gamma: 8,
  beta: 16,
  lr: 0.01,
  noiseSeed: 3,
  dataSeed: 0,
};

/** A batch of `n` seeded images of `size` values, labels 0..9. */
export function batchOf(n: number, size: number) {
  return {
    x: seeded(n * size, 2),
    y: Int32Array.from({ length: n }, (_, i) => (i * 7) % 10),
    size: n,
    indices: new Int32Array(n),
  };
}

/** Every float state entry (weights, running statistics) as host arrays, by name. */
export function state(model: Module): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const e of model.stateEntries()) {
    const v = e.read();
    if (v instanceof Float32Array) out.set(e.name, v);
  }
  return out;
}

/**
 * Largest difference of the two devices' weight updates over the largest cpu
 * update, per tensor: comparing the weights themselves would hide a wrong
 * gradient behind the learning rate.
 */
export function updateDiffs(
  before: Map<string, Float32Array>,
  cpu: Map<string, Float32Array>,
  gpu: Map<string, Float32Array>,
): [string, number][] {
  return [...before].map(([name, w0]) => {
    const c = cpu.get(name)!, g = gpu.get(name)!;
    let diff = 0, scale = 0;
    for (let i = 0; i < w0.length; i++) {
      diff = Math.max(diff, Math.abs(c[i] - g[i]));
      scale = Math.max(scale, Math.abs(c[i] - w0[i]));
    }
    return [name, scale === 0 ? diff : diff / scale];
  });
}
