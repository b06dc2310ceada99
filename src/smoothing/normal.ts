/**
 * The standard normal distribution to double precision: its CDF {@linkcode Phi}, its
 * upper tail {@linkcode normalSf}, density {@linkcode normalPdf} and quantile {@linkcode ndtri}
 * (SciPy's `norm.cdf`, `norm.sf`, `norm.pdf`, `norm.ppf`).
 *
 * @module
 */

const SQRT_PI = Math.sqrt(Math.PI);
const SQRT_2PI = Math.sqrt(2 * Math.PI);

/** exp(-z^2), splitting z so squaring a large z does not lose relative accuracy. */
function expNegSquare(z: number): number {
  const hi = Math.trunc(z * 16) / 16; // few bits: hi*hi is exact
  const lo = z - hi;
  return Math.exp(-hi * hi) * Math.exp(-lo * (z + hi));
}

/** erf(z) for 0 <= z < 1 from a series of positive terms (no cancellation). */
function erfSeries(z: number): number {
  const z2 = 2 * z * z;
  let term = z;
  let sum = z;
  for (let k = 0; k < 200; k++) {
    term *= z2 / (2 * k + 3);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return (2 / SQRT_PI) * expNegSquare(z) * sum;
}

/** erfc(z) for z >= 1 from Laplace's continued fraction (modified Lentz). */
function erfcFraction(z: number): number {
  const tiny = 1e-300;
  let f = z;
  let c = z;
  let d = 0;
  for (let k = 1; k < 5000; k++) {
    const a = k / 2;
    d = z + a * d;
    if (Math.abs(d) < tiny) d = tiny;
    d = 1 / d;
    c = z + a / c;
    if (Math.abs(c) < tiny) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return expNegSquare(z) / (SQRT_PI * f);
}

/** erfc(z) for z >= 0. */
function erfcNonNeg(z: number): number {
  if (z < 1) return 1 - erfSeries(z);
  if (z > 27.3) return 0; // below the smallest subnormal
  return erfcFraction(z);
}

/**
 * Standard normal CDF, Phi(x) = P(Z <= x), accurate to a few ulps including far tails.
 *
 * @param x any number; -Infinity gives 0, +Infinity gives 1, NaN gives NaN
 * @returns Phi(x)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Phi } from "./normal.ts";
 * assert.ok(Phi(0) === 0.5);
 * ```
 */
export function Phi(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const z = Math.abs(x) * Math.SQRT1_2;
  if (z < 1) {
    const e = erfSeries(z);
    return x < 0 ? 0.5 - 0.5 * e : 0.5 + 0.5 * e;
  }
  const c = erfcNonNeg(z);
  return x < 0 ? 0.5 * c : 1 - 0.5 * c;
}

/**
 * Standard normal upper tail, 1 - Phi(x), without cancellation for large x.
 *
 * @param x any number
 * @returns P(Z > x)
 */
export function normalSf(x: number): number {
  return Phi(-x);
}

/**
 * Standard normal density.
 *
 * @param x any number
 * @returns exp(-x^2/2) / sqrt(2 pi)
 */
export function normalPdf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  const hi = Math.trunc(a * 16) / 16; // exp(-x^2/2) split as in expNegSquare, without x/sqrt(2)
  const lo = a - hi;
  return Math.exp(-0.5 * hi * hi) * Math.exp(-0.5 * lo * (a + hi)) / SQRT_2PI;
}

// Acklam's rational approximation (relative error below 1.2e-9), refined below.
const A = [
  -3.969683028665376e+01,
  2.209460984245205e+02,
  -2.759285104469687e+02,
  1.383577518672690e+02,
  -3.066479806614716e+01,
  2.506628277459239e+00,
];
const B = [
  -5.447609879822406e+01,
  1.615858368580409e+02,
  -1.556989798598866e+02,
  6.680131188771972e+01,
  -1.328068155288572e+01,
];
const C = [
  -7.784894002430293e-03,
  -3.223964580411365e-01,
  -2.400758277161838e+00,
  -2.549732539343734e+00,
  4.374664141464968e+00,
  2.938163982698783e+00,
];
const D = [
  7.784695709041462e-03,
  3.224671290700398e-01,
  2.445134137142996e+00,
  3.754408661907416e+00,
];

function acklamLower(q: number): number {
  if (q < 0.02425) {
    const t = Math.sqrt(-2 * Math.log(q));
    return (((((C[0] * t + C[1]) * t + C[2]) * t + C[3]) * t + C[4]) * t + C[5]) /
      ((((D[0] * t + D[1]) * t + D[2]) * t + D[3]) * t + 1);
  }
  const r = q - 0.5;
  const s = r * r;
  return (((((A[0] * s + A[1]) * s + A[2]) * s + A[3]) * s + A[4]) * s + A[5]) * r /
    (((((B[0] * s + B[1]) * s + B[2]) * s + B[3]) * s + B[4]) * s + 1);
}

/** Quantile for 0 < q <= 0.5 (x <= 0): Acklam, then Halley steps on Phi(x) = q. */
function lowerQuantile(q: number): number {
  let x = acklamLower(q);
  for (let it = 0; it < 3; it++) {
    // (Phi(x) - q) / phi(x) written as a ratio so tiny tails never go subnormal.
    const u = (Phi(x) / q - 1) * (q / normalPdf(x));
    const step = u / (1 + 0.5 * x * u);
    x -= step;
    if (Math.abs(step) <= 1e-16 * Math.abs(x)) break;
  }
  return x;
}

/**
 * Standard normal quantile Phi^-1(p) (SciPy's `ndtri` / `norm.ppf`) to double precision.
 *
 * @param p probability in [0, 1]; 0 gives -Infinity and 1 gives +Infinity
 * @returns x with Phi(x) = p
 * @throws {RangeError} when p is NaN or outside [0, 1]
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ndtri } from "./normal.ts";
 * assert.ok(Math.abs(ndtri(0.975) - 1.959963984540054) < 1e-15);
 * ```
 */
export function ndtri(p: number): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`Probability must be in [0, 1], got ${p}`);
  if (p === 0) return -Infinity;
  if (p === 1) return Infinity;
  if (p === 0.5) return 0;
  // 1 - p is exact for p >= 0.5, so the upper half is solved on its own small tail.
  return p > 0.5 ? -lowerQuantile(1 - p) : lowerQuantile(p);
}
