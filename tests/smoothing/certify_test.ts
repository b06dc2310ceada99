import assert from "node:assert/strict";
import seedrandom from "seedrandom";
import {
  ABSTAIN,
  certify,
  certifyBoth,
  type CertifyOptions,
  type NoiseSampler,
  predict,
  type SampleStats,
} from "../../src/smoothing/certify.ts";
import { lowerConfidenceBound } from "../../src/smoothing/bounds.ts";
import { ndtri } from "../../src/smoothing/normal.ts";
import { assertClose, loadFixture } from "./_fixtures.ts";

function stats(k: number): SampleStats {
  return {
    counts: new Float64Array(k),
    softSum: new Float64Array(k),
    softSumSq: new Float64Array(k),
  };
}

/** Base classifier whose vote is class 0 with probability p, else class 1 (one-hot softmax). */
function bernoulliSampler(p: number, rng: () => number): NoiseSampler {
  return {
    sample(num) {
      const s = stats(2);
      for (let i = 0; i < num; i++) {
        const c = rng() < p ? 0 : 1;
        s.counts[c]++;
        s.softSum[c]++;
        s.softSumSq[c]++;
      }
      return s;
    },
  };
}

/** Soft outputs: class 0 gets X = U^g (mean 1/(1+g)), class 1 gets 1 - X. */
function powerSampler(g: number, rng: () => number): NoiseSampler {
  return {
    sample(num) {
      const s = stats(2);
      for (let i = 0; i < num; i++) {
        const x = Math.pow(rng(), g);
        s.counts[x >= 0.5 ? 0 : 1]++;
        s.softSum[0] += x;
        s.softSumSq[0] += x * x;
        s.softSum[1] += 1 - x;
        s.softSumSq[1] += (1 - x) * (1 - x);
      }
      return s;
    },
  };
}

/** Returns queued statistics and records every call. */
function scriptedSampler(script: SampleStats[]) {
  const calls: [number, number][] = [];
  const sampler: NoiseSampler = {
    sample(num, batch) {
      calls.push([num, batch]);
      const s = script.shift();
      if (!s) throw new Error("unexpected extra draw");
      return s;
    },
  };
  return { sampler, calls };
}

function fromCounts(counts: number[], soft = counts): SampleStats {
  return {
    counts: Float64Array.from(counts),
    softSum: Float64Array.from(soft),
    softSumSq: Float64Array.from(
      soft,
      (v, i) => Math.min(v, (v * v) / Math.max(1, counts[i] || 1)),
    ),
  };
}

const TRIALS = 2000;
const ALPHA = 0.01;
// Failures allowed: alpha * T plus three binomial standard deviations of Monte-Carlo slack.
const MAX_FAILURES = ALPHA * TRIALS + 3 * Math.sqrt(TRIALS * ALPHA * (1 - ALPHA));

Deno.test("certify() hard mode: the bound exceeds the true p in at most alpha of trials", async () => {
  const p = 0.7;
  const rng = seedrandom("certify-hard-soundness");
  const opts: CertifyOptions = { n0: 100, n: 1000, alpha: ALPHA, batch: 250, sigma: 0.25 };
  let failures = 0, gap = 0;
  for (let t = 0; t < TRIALS; t++) {
    const c = await certify(bernoulliSampler(p, rng), "hard", opts);
    assert.equal(c.prediction, 0);
    if (c.pA > p) failures++;
    gap += p - c.pA;
    assertClose(c.radius, 0.25 * ndtri(c.pA), 1e-15);
  }
  assert.ok(failures <= MAX_FAILURES, `${failures} failures > ${MAX_FAILURES}`);
  assert.ok(gap / TRIALS < 0.05, `bound is loose: mean gap ${gap / TRIALS}`); // not vacuous
});

Deno.test("certify() soft mode: the Bernstein bound exceeds the true mean in at most alpha of trials", async () => {
  const g = 0.25; // E[U^g] = 1 / (1 + g) = 0.8
  const mean = 1 / (1 + g);
  const rng = seedrandom("certify-soft-soundness");
  const opts: CertifyOptions = { n0: 100, n: 1000, alpha: ALPHA, batch: 1000, sigma: 0.5 };
  let failures = 0, gap = 0;
  for (let t = 0; t < TRIALS; t++) {
    const c = await certify(powerSampler(g, rng), "soft", opts);
    assert.equal(c.prediction, 0);
    if (c.pA > mean) failures++;
    gap += mean - c.pA;
  }
  assert.ok(failures <= MAX_FAILURES, `${failures} failures > ${MAX_FAILURES}`);
  assert.ok(gap / TRIALS < 0.1, `bound is loose: mean gap ${gap / TRIALS}`);
});

Deno.test("certify() never reuses the selection samples for estimation", async () => {
  // Selection says class 2 unanimously; the fresh estimation draw never sees class 2.
  const { sampler, calls } = scriptedSampler([fromCounts([0, 0, 100]), fromCounts([600, 400, 0])]);
  const c = await certify(sampler, "hard", { n0: 100, n: 1000, alpha: 0.001, batch: 64, sigma: 1 });
  assert.deepEqual(calls, [[100, 64], [1000, 64]]);
  assert.deepEqual(c, { prediction: ABSTAIN, radius: 0, pA: 0 });
});

Deno.test("certifyBoth() draws selection once and estimation once, shared by both modes", async () => {
  // Hard selection picks class 1 by votes; soft selection picks class 0 by probability mass.
  const sel = fromCounts([40, 60, 0], [55, 45, 0]);
  const est: SampleStats = {
    counts: Float64Array.from([100, 900, 0]),
    softSum: Float64Array.from([950, 50, 0]),
    softSumSq: Float64Array.from([910, 10, 0]),
  };
  const { sampler, calls } = scriptedSampler([sel, est]);
  const opts = { n0: 100, n: 1000, alpha: 0.001, batch: 500, sigma: 0.25 };
  const both = await certifyBoth(sampler, opts);
  assert.deepEqual(calls, [[100, 500], [1000, 500]]);
  assert.equal(both.hard.prediction, 1);
  // Cohen's pA: statsmodels proportion_confint(900, 1000, alpha=0.002, method="beta")[0], that
  // is SciPy 1.10.1's scipy.stats.beta.ppf(0.001, 900, 101).
  assertClose(both.hard.pA, 0.8674640180257482, 1e-10);
  assert.equal(both.hard.pA, lowerConfidenceBound(900, 1000, 0.001));
  assert.equal(both.soft.prediction, 0);
  const t = Math.log(2 / 0.001);
  const v = (910 - 950 * 950 / 1000) / 999;
  assertClose(both.soft.pA, 0.95 - Math.sqrt(2 * v * t / 1000) - 7 * t / 3 / 999, 1e-14);
  assertClose(both.soft.radius, 0.25 * ndtri(both.soft.pA), 1e-15);
});

Deno.test("certify() gives Cohen's radius and accepts an async sampler", async () => {
  const script = [fromCounts([1, 99]), fromCounts([1000, 99000])];
  const sampler: NoiseSampler = { sample: (_n, _b) => Promise.resolve(script.shift()!) };
  const c = await certify(sampler, "hard", {
    n0: 100,
    n: 100000,
    alpha: 0.001,
    batch: 1000,
    sigma: 1,
  });
  assert.equal(c.prediction, 1);
  // statsmodels proportion_confint(99000, 100000, alpha=0.002, method="beta")[0] and sigma *
  // scipy norm.ppf(pA), from the fixture of scripts/fixtures/make_stats_fixtures.py.
  const row = (await loadFixture<{ cohen_lcb: number[][] }>("bounds.json")).cohen_lcb
    .find(([na, n, alpha, sigma]) =>
      na === 99000 && n === 100000 && alpha === 0.001 && sigma === 1
    );
  assert.ok(row, "fixture row for 99000 of 100000");
  const [, , , , pA, radius] = row;
  assertClose(c.pA, pA, 1e-10);
  assertClose(c.radius, radius, 1e-9);
  assert.equal(c.radius, ndtri(c.pA));
});

Deno.test("certify() abstains with radius 0 when pA < 0.5", async () => {
  const { sampler } = scriptedSampler([fromCounts([60, 40]), fromCounts([510, 490])]);
  const c = await certify(sampler, "hard", {
    n0: 100,
    n: 1000,
    alpha: 0.001,
    batch: 100,
    sigma: 1,
  });
  assert.equal(c.prediction, ABSTAIN);
  assert.equal(c.radius, 0);
  assert.ok(c.pA < 0.5 && c.pA > 0.4);
});

Deno.test("certify() rejects bad options and inconsistent samplers", async () => {
  const s = bernoulliSampler(0.9, seedrandom("x"));
  const ok = { n0: 10, n: 100, alpha: 0.001, batch: 10, sigma: 0.25 };
  for (
    const bad of [{ n0: 0 }, { n: 1.5 }, { alpha: 0 }, { alpha: 0.5 }, { batch: 0 }, { sigma: 0 }]
  ) {
    await assert.rejects(() => certify(s, "hard", { ...ok, ...bad }), RangeError);
  }
  await assert.rejects(() => certify(s, "soft", { ...ok, n: 1 }), RangeError);
  await assert.rejects(() => certify(s, "both" as "hard", ok), RangeError);
  const short: NoiseSampler = { sample: () => fromCounts([1, 2]) };
  await assert.rejects(() => certify(short, "hard", ok), /counted 3 samples, expected 10/);
});

Deno.test("predict() abstains unless the binomial test separates the top two classes", async () => {
  const run = async (counts: number[], alpha: number) => {
    const { sampler, calls } = scriptedSampler([fromCounts(counts)]);
    const r = await predict(sampler, counts.reduce((a, b) => a + b), alpha, 50);
    assert.equal(calls.length, 1);
    return r;
  };
  // binomtest(60, 100).pvalue = 0.0569
  assert.equal(await run([0, 60, 40, 0], 0.05), ABSTAIN);
  assert.equal(await run([0, 60, 40, 0], 0.06), 1);
  assert.equal(await run([5, 3, 92], 0.001), 2);
  assert.equal(await run([50, 50], 0.5), ABSTAIN);
  assert.equal(await run([10], 0.01), 0); // one class: second count is 0, p = 2/1024
});
