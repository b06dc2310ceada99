/**
 * Confidence bounds used by randomized-smoothing certification: Clopper-Pearson (hard
 * mode, Cohen et al. 2019), the two-sided binomial test (Cohen's PREDICT) and the
 * empirical Bernstein bound (soft mode, MACER).
 *
 * @module
 */

import { betaincBoth, betaincinv, logBinomPmf } from "./beta.ts";

function checkCount(count: number, n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`n must be a positive integer, got ${n}`);
  if (!Number.isInteger(count) || count < 0 || count > n) {
    throw new RangeError(`count must be an integer in [0, ${n}], got ${count}`);
  }
}

function checkAlpha(alpha: number, max = 1): void {
  if (!(alpha > 0 && alpha < max)) {
    throw new RangeError(`alpha must be in (0, ${max}), got ${alpha}`);
  }
}

/**
 * Two-sided Clopper-Pearson interval for a binomial proportion at confidence 1 - alpha,
 * identical to statsmodels `proportion_confint(count, n, alpha, method="beta")`:
 * lo = Beta(count, n-count+1) quantile at alpha/2 (0 when count = 0),
 * hi = Beta(count+1, n-count) quantile at 1 - alpha/2 (1 when count = n).
 *
 * @param count successes, an integer in [0, n]
 * @param n trials, a positive integer
 * @param alpha total miss probability in (0, 1)
 * @returns [lo, hi]
 * @throws {RangeError} for out-of-range arguments
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { clopperPearson } from "./bounds.ts";
 * const [lo, hi] = clopperPearson(5, 10, 0.05);
 * assert.ok(Math.abs(lo - 0.18708602844739) < 1e-12 && hi > 0.8);
 * ```
 */
export function clopperPearson(count: number, n: number, alpha: number): [number, number] {
  checkCount(count, n);
  checkAlpha(alpha);
  const half = 0.5 * alpha;
  const lo = count === 0 ? 0 : betaincinv(half, count, n - count + 1, 1 - half);
  const hi = count === n ? 1 : betaincinv(1 - half, count + 1, n - count, half);
  return [lo, hi];
}

/**
 * One-sided (1 - alpha) lower confidence bound on a binomial proportion, exactly Cohen's
 * `_lower_confidence_bound`: `proportion_confint(nA, n, alpha=2*alpha, method="beta")[0]`.
 *
 * @param nA successes (top-class count), an integer in [0, n]
 * @param n trials
 * @param alpha failure probability in (0, 0.5)
 * @returns the lower bound pA
 * @throws {RangeError} for out-of-range arguments
 */
export function lowerConfidenceBound(nA: number, n: number, alpha: number): number {
  checkAlpha(alpha, 0.5);
  return clopperPearson(nA, n, 2 * alpha)[0];
}

/**
 * Binomial probability mass P(X = k) for X ~ Binomial(n, p), accurate for large n.
 *
 * @param k integer in [0, n]
 * @param n trials
 * @param p success probability in [0, 1]
 * @returns the probability
 */
export function binomPmf(k: number, n: number, p: number): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`p must be in [0, 1], got ${p}`);
  if (!Number.isInteger(k) || k < 0 || k > n) return 0;
  return Math.exp(logBinomPmf(k, n, p, 1 - p));
}

/** P(X <= k) for X ~ Binomial(n, p). */
export function binomCdf(k: number, n: number, p: number): number {
  if (k < 0) return 0;
  if (k >= n) return 1;
  if (p === 0) return 1;
  if (p === 1) return 0;
  // P(X <= k) = I_{1-p}(n-k, k+1)
  return betaincBoth(1 - p, n - k, k + 1, p)[0];
}

/** P(X > k) for X ~ Binomial(n, p). */
export function binomSf(k: number, n: number, p: number): number {
  if (k < 0) return 1;
  if (k >= n) return 0;
  if (p === 0) return 0;
  if (p === 1) return 1;
  // P(X > k) = I_p(k+1, n-k)
  return betaincBoth(p, k + 1, n - k, 1 - p)[0];
}

/** Index i in [lo-1, hi] with a(i) <= d < a(i+1), as SciPy's binomtest searches. */
function searchOtherSide(a: (i: number) => number, d: number, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = lo + Math.floor((hi - lo) / 2);
    const v = a(mid);
    if (v < d) lo = mid + 1;
    else if (v > d) hi = mid - 1;
    else return mid;
  }
  return a(lo) <= d ? lo : lo - 1;
}

/**
 * Two-sided exact binomial test p-value, as SciPy's `binomtest(k, n, p).pvalue` (and the
 * older `binom_test`): the probability of outcomes no more likely than k (pmf within a
 * relative 1e-7 counts as equal). Cohen's PREDICT uses it with p = 0.5.
 *
 * @param k successes, an integer in [0, n]
 * @param n trials, a positive integer
 * @param p null success probability in [0, 1] (default 0.5)
 * @returns the p-value in [0, 1]
 * @throws {RangeError} for out-of-range arguments
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { binomTest } from "./bounds.ts";
 * assert.ok(Math.abs(binomTest(9, 10) - 0.021484375) < 1e-15);
 * ```
 */
export function binomTest(k: number, n: number, p = 0.5): number {
  checkCount(k, n);
  if (!(p >= 0 && p <= 1)) throw new RangeError(`p must be in [0, 1], got ${p}`);
  const pmf = (i: number) => binomPmf(i, n, p);
  const d = pmf(k);
  const rerr = 1 + 1e-7;
  let pval: number;
  if (k === p * n) {
    pval = 1;
  } else if (k < p * n) {
    const ix = searchOtherSide((i) => -pmf(i), -d * rerr, Math.ceil(p * n), n);
    const y = n - ix + (d * rerr === pmf(ix) ? 1 : 0);
    pval = binomCdf(k, n, p) + binomSf(n - y, n, p);
  } else {
    const ix = searchOtherSide(pmf, d * rerr, 0, Math.floor(p * n));
    const y = ix + 1;
    pval = binomCdf(y - 1, n, p) + binomSf(k - 1, n, p);
  }
  return Math.min(1, pval);
}

/**
 * Empirical Bernstein lower confidence bound on the mean of [0, 1]-valued samples
 * (Maurer & Pontil 2009, Thm 4), exactly as MACER's soft certification computes it:
 * V = max(0, (sumSq - sum^2/n) / (n-1)), t = ln(2/alpha),
 * bound = sum/n - sqrt(2 V t / n) - 7 t / (3 (n-1)).
 *
 * @param sum sum of the n samples
 * @param sumSq sum of their squares
 * @param n number of samples (>= 2)
 * @param alpha failure probability in (0, 1)
 * @returns the lower bound (may be negative)
 * @throws {RangeError} for out-of-range arguments
 */
export function empiricalBernsteinLower(
  sum: number,
  sumSq: number,
  n: number,
  alpha: number,
): number {
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`n must be an integer >= 2, got ${n}`);
  checkAlpha(alpha);
  if (!Number.isFinite(sum) || !Number.isFinite(sumSq)) {
    throw new RangeError(`sum and sumSq must be finite, got ${sum}, ${sumSq}`);
  }
  const variance = Math.max(0, (sumSq - sum * sum / n) / (n - 1));
  const t = Math.log(2 / alpha);
  return sum / n - Math.sqrt(2 * variance * t / n) - 7 * t / 3 / (n - 1);
}
