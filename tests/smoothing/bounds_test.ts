import assert from "node:assert/strict";
import {
  binomCdf,
  binomPmf,
  binomSf,
  binomTest,
  clopperPearson,
  empiricalBernsteinLower,
  lowerConfidenceBound,
} from "../../src/smoothing/bounds.ts";
import { ndtri } from "../../src/smoothing/normal.ts";
import { assertClose, loadFixture, num } from "./_fixtures.ts";

type Bounds = {
  clopper_pearson: [number, number, number, number | string, number | string][];
  cohen_lcb: [number, number, number, number, number, number][];
  binom_test: [number, number, number, number][];
  bernstein: [number, number, number, number, number][];
};
const fx = await loadFixture<Bounds>("bounds.json");

Deno.test("clopperPearson() matches statsmodels proportion_confint(method='beta') to 1e-10", () => {
  assert.ok(fx.clopper_pearson.some(([c, n]) => c === 0 && n === 100000));
  for (const [c, n, alpha, lo, hi] of fx.clopper_pearson) {
    const [l, h] = clopperPearson(c, n, alpha);
    assertClose(l, num(lo), 1e-10, 0, `lo(${c}, ${n}, ${alpha})`);
    assertClose(h, num(hi), 1e-10, 0, `hi(${c}, ${n}, ${alpha})`);
  }
});

Deno.test("clopperPearson() pins lo = 0 at count 0 and hi = 1 at count n", () => {
  assert.deepEqual(clopperPearson(0, 1, 0.05).map((v, i) => i === 0 ? v : 0), [0, 0]);
  assert.equal(clopperPearson(0, 100000, 0.002)[0], 0);
  assert.equal(clopperPearson(100000, 100000, 0.002)[1], 1);
});

Deno.test("lowerConfidenceBound() is Cohen's bound and gives Cohen's radius", () => {
  for (const [na, n, alpha, sigma, pa, radius] of fx.cohen_lcb) {
    const p = lowerConfidenceBound(na, n, alpha);
    assertClose(p, pa, 1e-10, 0, `pA(${na}, ${n})`);
    const r = p < 0.5 ? 0 : sigma * ndtri(p);
    assertClose(r, radius, 1e-9, 1e-15, `radius(${na}, ${n})`);
  }
});

Deno.test("bounds reject out-of-range arguments with RangeError", () => {
  assert.throws(() => clopperPearson(-1, 10, 0.05), RangeError);
  assert.throws(() => clopperPearson(11, 10, 0.05), RangeError);
  assert.throws(() => clopperPearson(1.5, 10, 0.05), RangeError);
  assert.throws(() => clopperPearson(1, 0, 0.05), RangeError);
  assert.throws(() => clopperPearson(1, 10, 0), RangeError);
  assert.throws(() => lowerConfidenceBound(1, 10, 0.5), RangeError);
  assert.throws(() => binomTest(3, 2), RangeError);
  assert.throws(() => binomTest(1, 2, 1.5), RangeError);
  assert.throws(() => empiricalBernsteinLower(1, 1, 1, 0.01), RangeError);
  assert.throws(() => empiricalBernsteinLower(1, 1, 10, 1), RangeError);
});

Deno.test("binomTest() matches scipy binomtest two-sided p-values", () => {
  for (const [k, n, p, want] of fx.binom_test) {
    assertClose(binomTest(k, n, p), want, 1e-10, 1e-300, `binomtest(${k}, ${n}, ${p})`);
  }
});

Deno.test("binomPmf(), binomCdf() and binomSf() are consistent", () => {
  let cum = 0;
  for (let k = 0; k <= 30; k++) {
    cum += binomPmf(k, 30, 0.3);
    assertClose(binomCdf(k, 30, 0.3), cum, 1e-13);
    assertClose(binomSf(k, 30, 0.3), 1 - cum, 1e-12, 1e-14); // 1 - cum itself cancels
  }
  assertClose(binomPmf(3, 10, 0.5), 120 / 1024, 1e-14);
});

Deno.test("empiricalBernsteinLower() is MACER's formula", () => {
  for (const [sum, sumSq, n, alpha, want] of fx.bernstein) {
    // sumSq - sum^2/n cancels, so allow a few ulps of the sums in absolute terms
    assertClose(empiricalBernsteinLower(sum, sumSq, n, alpha), want, 1e-12, 1e-14);
  }
  // Zero variance: only the 7t/(3(n-1)) term remains.
  const t = Math.log(2 / 0.01);
  assertClose(empiricalBernsteinLower(100, 100, 100, 0.01), 1 - 7 * t / 3 / 99, 1e-15);
});
