/**
 * Cohen et al.'s CERTIFY and PREDICT for a smoothed classifier, and MACER's soft variant,
 * written against an abstract {@linkcode NoiseSampler} so they know nothing of tensors or
 * devices.
 *
 * @module
 */

import { binomTest, empiricalBernsteinLower, lowerConfidenceBound } from "./bounds.ts";
import { ndtri } from "./normal.ts";

/** Label returned when the smoothed classifier abstains. */
export const ABSTAIN = -1;

/** Per-class statistics of `num` noisy copies of one input through the base classifier. */
export interface SampleStats {
  /** How many copies each class won (argmax of the logits); sums to `num`. */
  counts: Float64Array;
  /** Per-class sum over copies of softmax(beta * logits). */
  softSum: Float64Array;
  /** Per-class sum over copies of softmax(beta * logits) squared. */
  softSumSq: Float64Array;
}

/**
 * Draws `num` fresh noisy copies of the current input and classifies them in batches of
 * `batch`. Every call must use new noise: CERTIFY relies on the selection and estimation
 * draws being independent.
 */
export interface NoiseSampler {
  /** Draw and classify `num` copies; may be synchronous or return a promise. */
  sample(num: number, batch: number): SampleStats | Promise<SampleStats>;
}

/** "hard": Cohen's vote counts; "soft": MACER's summed softmax(beta z). */
export type CertifyMode = "hard" | "soft";

/** Parameters of CERTIFY (reference defaults: n0 100, n 100,000, alpha 0.001, batch 1,000). */
export interface CertifyOptions {
  /** Selection samples used only to pick the top class. */
  n0: number;
  /** Estimation samples used only for the bound. */
  n: number;
  /** Failure probability. */
  alpha: number;
  /** Batch size handed to the sampler. */
  batch: number;
  /** Noise standard deviation; the radius scales with it. */
  sigma: number;
}

/** Outcome of CERTIFY for one input. */
export interface Certificate {
  /** Predicted class, or {@linkcode ABSTAIN} (-1). */
  prediction: number;
  /** Certified L2 radius; 0 on abstention. */
  radius: number;
  /** Lower confidence bound on the top-class probability (abstains below 0.5). */
  pA: number;
}

function checkPositiveInt(name: string, v: number, min = 1): void {
  if (!Number.isInteger(v) || v < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
  }
}

function checkOptions(o: CertifyOptions, soft: boolean): void {
  checkPositiveInt("n0", o.n0);
  checkPositiveInt("n", o.n, soft ? 2 : 1); // the empirical variance needs two samples
  checkPositiveInt("batch", o.batch);
  if (!(o.alpha > 0 && o.alpha < 0.5)) {
    throw new RangeError(`alpha must be in (0, 0.5), got ${o.alpha}`);
  }
  if (!(o.sigma > 0 && Number.isFinite(o.sigma))) {
    throw new RangeError(`sigma must be positive and finite, got ${o.sigma}`);
  }
}

async function draw(sampler: NoiseSampler, num: number, batch: number): Promise<SampleStats> {
  const s = await sampler.sample(num, batch);
  const k = s.counts.length;
  if (k < 1 || s.softSum.length !== k || s.softSumSq.length !== k) {
    throw new Error(
      `Sampler returned mismatched class statistics (${k}, ${s.softSum.length}, ${s.softSumSq.length})`,
    );
  }
  let total = 0;
  for (let i = 0; i < k; i++) total += s.counts[i];
  if (total !== num) throw new Error(`Sampler counted ${total} samples, expected ${num}`);
  return s;
}

/** First index of the maximum, like numpy's argmax (Cohen's class selection). */
export function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

function finish(c: number, pA: number, sigma: number): Certificate {
  if (pA < 0.5) return { prediction: ABSTAIN, radius: 0, pA };
  return { prediction: c, radius: sigma * ndtri(pA), pA };
}

function hardBound(est: SampleStats, c: number, o: CertifyOptions): number {
  return lowerConfidenceBound(est.counts[c], o.n, o.alpha);
}

function softBound(est: SampleStats, c: number, o: CertifyOptions): number {
  return empiricalBernsteinLower(est.softSum[c], est.softSumSq[c], o.n, o.alpha);
}

/**
 * CERTIFY (Cohen et al. 2019, Alg. 1): pick the top class from n0 selection samples, then
 * bound its probability from n fresh estimation samples. Hard mode uses the one-sided
 * Clopper-Pearson bound on the vote count; soft mode the empirical Bernstein bound on the
 * summed softmax(beta z). pA < 0.5 abstains with radius 0, else radius = sigma Phi^-1(pA).
 *
 * @param sampler source of noisy classifications of the input
 * @param mode "hard" or "soft"
 * @param opts n0, n, alpha, batch, sigma
 * @returns prediction (-1 to abstain), radius and pA
 * @throws {RangeError} for invalid options
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { certify, type NoiseSampler } from "./certify.ts";
 * // A base classifier that votes class 1 for 99% of the noisy copies.
 * const sampler: NoiseSampler = {
 *   sample: (num) => {
 *     const counts = Float64Array.from([num - Math.round(0.99 * num), Math.round(0.99 * num)]);
 *     return { counts, softSum: counts, softSumSq: counts };
 *   },
 * };
 * const c = await certify(sampler, "hard", { n0: 100, n: 100000, alpha: 0.001, batch: 1000, sigma: 0.25 });
 * assert.equal(c.prediction, 1);
 * assert.ok(c.radius > 0.57 && c.radius < 0.58); // 0.25 * Phi^-1(0.98901...)
 * ```
 */
export async function certify(
  sampler: NoiseSampler,
  mode: CertifyMode,
  opts: CertifyOptions,
): Promise<Certificate> {
  if (mode !== "hard" && mode !== "soft") throw new RangeError(`Unknown certify mode: ${mode}`);
  checkOptions(opts, mode === "soft");
  const sel = await draw(sampler, opts.n0, opts.batch);
  const c = argmax(mode === "hard" ? sel.counts : sel.softSum);
  const est = await draw(sampler, opts.n, opts.batch); // fresh: selection is never reused
  const pA = mode === "hard" ? hardBound(est, c, opts) : softBound(est, c, opts);
  return finish(c, pA, opts.sigma);
}

/**
 * Hard and soft certification of one input at once, as MACER's test (`mode='both'` in
 * `rs/core.py`): one selection draw of n0 picks both top classes (argmax of counts, argmax
 * of softmax sums), then one estimation draw of n serves both bounds. The two certificates
 * therefore share samples with each other, but never with the selection.
 *
 * @param sampler source of noisy classifications of the input
 * @param opts n0, n (>= 2), alpha, batch, sigma
 * @returns the hard and the soft certificate
 */
export async function certifyBoth(
  sampler: NoiseSampler,
  opts: CertifyOptions,
): Promise<{ hard: Certificate; soft: Certificate }> {
  checkOptions(opts, true);
  const sel = await draw(sampler, opts.n0, opts.batch);
  const cHard = argmax(sel.counts);
  const cSoft = argmax(sel.softSum);
  const est = await draw(sampler, opts.n, opts.batch);
  return {
    hard: finish(cHard, hardBound(est, cHard, opts), opts.sigma),
    soft: finish(cSoft, softBound(est, cSoft, opts), opts.sigma),
  };
}

/**
 * PREDICT (Cohen et al. 2019, Alg. 1): the top class of n samples, unless a two-sided
 * binomial test of the top two counts (p = 0.5) has p-value above alpha, then abstain.
 *
 * @param sampler source of noisy classifications of the input
 * @param n number of samples
 * @param alpha failure probability in (0, 1)
 * @param batch batch size handed to the sampler
 * @returns the predicted class or {@linkcode ABSTAIN}
 */
export async function predict(
  sampler: NoiseSampler,
  n: number,
  alpha: number,
  batch: number,
): Promise<number> {
  checkPositiveInt("n", n);
  checkPositiveInt("batch", batch);
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`alpha must be in (0, 1), got ${alpha}`);
  const { counts } = await draw(sampler, n, batch);
  const top = argmax(counts);
  let second = 0;
  for (let i = 0; i < counts.length; i++) if (i !== top && counts[i] > second) second = counts[i];
  const count1 = counts[top];
  return binomTest(count1, count1 + second, 0.5) > alpha ? ABSTAIN : top;
}
