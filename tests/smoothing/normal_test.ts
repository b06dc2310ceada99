import assert from "node:assert/strict";
import { ndtri, normalPdf, normalSf, Phi } from "../../src/smoothing/normal.ts";
import { assertClose, loadFixture, num } from "./_fixtures.ts";

type Normal = {
  ppf: [number, number | string][];
  cdf: [number, number][];
  pdf: [number, number][];
};
const fx = await loadFixture<Normal>("normal.json");

Deno.test("ndtri() matches scipy norm.ppf to 1e-14 relative, tails included", () => {
  for (const [p, want] of fx.ppf) assertClose(ndtri(p), num(want), 1e-14, 0, `ndtri(${p})`);
});

Deno.test("ndtri() maps 0 and 1 to the infinities and rejects out-of-range input", () => {
  assert.equal(ndtri(0), -Infinity);
  assert.equal(ndtri(1), Infinity);
  assert.equal(ndtri(0.5), 0);
  for (const bad of [-1e-300, 1.0000001, NaN]) assert.throws(() => ndtri(bad), RangeError);
});

Deno.test("ndtri() is antisymmetric and inverts Phi()", () => {
  // [p, norm.ppf(p), norm.ppf(1 - p)] from SciPy 1.10.1 (scipy.stats.norm), 1 - p rounded to a
  // double as here: ndtri's upper half is derived from its lower half, so it is checked against
  // values computed independently, not against ndtri(p) itself.
  const ref = [
    [1e-12, -7.034483825301131, 7.0344869100478356],
    [0.001, -3.090232306167813, 3.090232306167813],
    [0.2, -0.8416212335729142, 0.8416212335729143],
    [0.4999, -0.0002506628300880075, 0.0002506628300880075],
  ];
  for (const [p, lower, upper] of ref) {
    assertClose(ndtri(p), lower, 1e-14, 1e-17, `ndtri(${p})`);
    assertClose(ndtri(1 - p), upper, 1e-14, 1e-17, `ndtri(1 - ${p})`);
    assertClose(Phi(ndtri(p)), p, 1e-14);
    assertClose(Phi(ndtri(1 - p)), 1 - p, 1e-14);
  }
});

Deno.test("Phi() matches scipy norm.cdf to 1e-13 relative", () => {
  for (const [x, want] of fx.cdf) assertClose(Phi(x), want, 1e-13, 0, `Phi(${x})`);
  assert.equal(Phi(-Infinity), 0);
  assert.equal(Phi(Infinity), 1);
  assert.ok(Number.isNaN(Phi(NaN)));
});

Deno.test("normalPdf() and normalSf() match scipy", () => {
  for (const [x, want] of fx.pdf) assertClose(normalPdf(x), want, 1e-14, 0, `pdf(${x})`);
  assertClose(normalSf(10), 7.619853024160527e-24, 1e-13);
});
