import assert from "node:assert/strict";
import {
  betainc,
  betaincBoth,
  betaincinv,
  betaPdf,
  lbeta,
  lgamma,
} from "../../src/smoothing/beta.ts";
import { assertClose, loadFixture, num } from "./_fixtures.ts";

type Row4 = [number, number, number, number | string];
type Beta = {
  betainc_mpmath: Row4[];
  betainc_exact: Row4[];
  ppf: Row4[];
  lgamma: [number, number][];
};
const fx = await loadFixture<Beta>("beta.json");

Deno.test("betainc() matches mpmath for moderate parameters", () => {
  for (const [x, a, b, want] of fx.betainc_mpmath) {
    assertClose(betainc(x, a, b), num(want), 1e-13, 0, `I(${x}; ${a}, ${b})`);
  }
});

Deno.test("betainc() matches exact binomial sums at parameters near 1e5", () => {
  // SciPy itself is only good to ~1e-10 here, so these come from mpmath.
  for (const [x, a, b, want] of fx.betainc_exact) {
    assertClose(betainc(x, a, b), num(want), 1e-12, 0, `I(${x}; ${a}, ${b})`);
  }
});

Deno.test("betaincBoth() returns complementary tails, the small one accurate", () => {
  // P(Beta(2, 300) > 1/2) = P(Bin(301, 1/2) >= 300) = 302 / 2^301
  const [lo, up] = betaincBoth(0.5, 2, 300);
  assert.equal(lo, 1 - up);
  assertClose(up, 302 / 2 ** 301, 1e-13);
  assert.deepEqual(betaincBoth(0, 2, 3), [0, 1]);
  assert.deepEqual(betaincBoth(1, 2, 3), [1, 0]);
});

Deno.test("betaincinv() matches scipy beta.ppf to 1e-12 relative", () => {
  for (const [p, a, b, want] of fx.ppf) {
    assertClose(betaincinv(p, a, b), num(want), 1e-12, 0, `ppf(${p}; ${a}, ${b})`);
  }
});

Deno.test("betaincinv() inverts betainc() across a grid", () => {
  for (const [a, b] of [[1, 1], [0.5, 3], [4, 0.7], [30, 70], [999, 2], [2, 99999]]) {
    for (const p of [1e-12, 1e-4, 0.05, 0.5, 0.95, 0.9999]) {
      const x = betaincinv(p, a, b);
      assertClose(betainc(x, a, b), p, 1e-11, 1e-300, `a=${a} b=${b} p=${p}`);
    }
  }
  assert.equal(betaincinv(0, 2, 3), 0);
  assert.equal(betaincinv(1, 2, 3), 1);
});

Deno.test("betainc() and betaincinv() reject invalid arguments with RangeError", () => {
  assert.throws(() => betainc(-0.1, 1, 1), RangeError);
  assert.throws(() => betainc(0.5, 0, 1), RangeError);
  assert.throws(() => betaincinv(1.5, 1, 1), RangeError);
  assert.throws(() => betaincinv(0.5, 1, -2), RangeError);
  assert.throws(() => lgamma(0), RangeError);
});

Deno.test("lgamma(), lbeta() and betaPdf() agree with Python", () => {
  for (const [x, want] of fx.lgamma) assertClose(lgamma(x), want, 5e-15, 5e-16, `lgamma(${x})`);
  assertClose(lbeta(2, 3), Math.log(1 / 12), 1e-14);
  assertClose(lbeta(1, 1e5), -Math.log(1e5), 1e-13);
  assertClose(lbeta(5e4, 5e4), lgamma(5e4) * 2 - lgamma(1e5), 1e-9); // naive form loses digits
  assertClose(betaPdf(0.5, 2, 2), 1.5, 1e-14);
});
