/**
 * Seeded weight initialisation with PyTorch's schemes.
 *
 * @module
 */
import seedrandom from "seedrandom";

/** A seeded source of uniform and normal samples for initialisation. */
export class InitRng {
  #next: () => number;

  constructor(seed: number | string) {
    this.#next = seedrandom(`init:${seed}`);
  }

  /** `n` samples from U(-bound, bound). */
  uniform(n: number, bound: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = (2 * this.#next() - 1) * bound;
    return out;
  }

  /** `n` samples from N(0, std^2) (Box-Muller). */
  normal(n: number, std: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const u1 = 1 - this.#next();
      const u2 = this.#next();
      const r = Math.sqrt(-2 * Math.log(u1)) * std;
      out[i] = r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
    }
    return out;
  }
}

/** PyTorch's default for Conv2d and Linear weights and biases: U(+-1/sqrt(fan_in)). */
export function defaultBound(fanIn: number): number {
  return 1 / Math.sqrt(fanIn);
}
