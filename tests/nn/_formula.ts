/**
 * Re-creates the deterministic weights and inputs of
 * scripts/fixtures/make_model_fixtures.py (see its header for the formula).
 */
import type { Module } from "../../src/nn/module.ts";

const base = (i: number, j: number) => Math.sin(0.37 * i + 0.002 * i * i + 1.3 * j + 0.1);

/** Writes the formula's values into every state entry of `model`. */
export function loadFormulaWeights(model: Module): void {
  model.stateEntries().forEach((e, j) => {
    if (e.dtype === "i64") {
      e.write(BigInt64Array.of(0n));
      return;
    }
    const n = e.shape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n);
    const leaf = e.name.split(".").at(-1)!;
    const isBn = e.shape.length === 1 && /(^|\.)(bn\d*|downsample\.1)\.[a-z_]+$/.test(e.name);
    for (let i = 0; i < n; i++) {
      const s = base(i, j);
      if (leaf === "running_mean") out[i] = 0.05 * s;
      else if (leaf === "running_var") out[i] = 1 + 0.2 * s * s;
      else if (isBn && leaf === "weight") out[i] = 1 + 0.1 * s;
      else if (leaf === "bias") out[i] = 0.1 * s;
      else {
        const fanIn = e.shape.slice(1).reduce((a, b) => a * b, 1);
        const scale = 1 / Math.sqrt(fanIn);
        out[i] = scale * s;
      }
    }
    e.write(out);
  });
}

/** The formula's input batch, flat NCHW. */
export function formulaInput(size: number): Float32Array {
  const x = new Float32Array(size);
  for (let i = 0; i < size; i++) x[i] = 0.5 + 0.5 * Math.sin(0.11 * i + 0.0013 * i * i + 0.7);
  return x;
}

export function formulaLabels(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, b) => (3 * b + 1) % 10);
}

/** Largest |a - b| relative to the largest |b|. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 1e-30;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

/** Per-parameter gradient statistics as the fixture generator writes them. */
export interface GradStat {
  name: string;
  sum: number;
  abs_sum: number;
  shape: number[];
  first?: number[];
}

/** A JSON fixture of tests/fixtures/models. */
export function modelFixture(name: string) {
  return JSON.parse(
    Deno.readTextFileSync(new URL(`../fixtures/models/${name}.json`, import.meta.url)),
  );
}
