// Loading of the reference values written by scripts/fixtures/make_stats_fixtures.py.
import assert from "node:assert/strict";

const DIR = new URL("../fixtures/stats/", import.meta.url);

/** Parses a fixture JSON file from tests/fixtures/stats. */
export async function loadFixture<T = Record<string, unknown>>(name: string): Promise<T> {
  return JSON.parse(await Deno.readTextFile(new URL(name, DIR)));
}

/** Fixture numbers: JSON cannot hold infinities, so they are stored as strings. */
export function num(v: number | string): number {
  return typeof v === "string" ? Number(v) : v;
}

/** Asserts |actual - expected| <= rtol * |expected| + atol (exact match for infinities). */
export function assertClose(
  actual: number,
  expected: number,
  rtol: number,
  atol = 0,
  msg = "",
): void {
  if (!Number.isFinite(expected)) {
    assert.equal(actual, expected, msg);
    return;
  }
  const err = Math.abs(actual - expected);
  assert.ok(
    err <= rtol * Math.abs(expected) + atol,
    `${msg} got ${actual}, expected ${expected} (abs err ${err.toExponential(2)})`,
  );
}
