import assert from "node:assert/strict";
import { computeMetrics, DEFAULT_RADII, matRadius } from "../../src/smoothing/metrics.ts";

Deno.test("computeMetrics() on a hand-computed example", () => {
  const results = [
    { label: 3, prediction: 3, radius: 0.61 }, // correct
    { label: 1, prediction: 1, radius: 2.3 }, // correct
    { label: 2, prediction: -1, radius: 0 }, // abstained
    { label: 0, prediction: 5, radius: 0.9 }, // wrong: its radius never counts
    { label: 4, prediction: 4, radius: 0.25 }, // correct, exactly on the grid
    { label: 7, prediction: 7, radius: 0.1 }, // correct
  ];
  const m = computeMetrics(results);
  assert.deepEqual(DEFAULT_RADII, [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.25]);
  assert.deepEqual(
    m.certifiedAccuracy.map((c) => c.count),
    [4, 3, 2, 1, 1, 1, 1, 1, 1, 1],
  );
  assert.equal(m.certifiedAccuracy[0].accuracy, 4 / 6);
  assert.equal(m.certifiedAccuracy[1].accuracy, 0.5);
  assert.equal(m.acr, (0.61 + 2.3 + 0.25 + 0.1) / 6);
  assert.deepEqual(m.counts, { total: 6, correct: 4, wrong: 1, abstained: 1 });
  assert.deepEqual(results.map(matRadius), [0.61, 2.3, -1, -1, 0.25, 0.1]);
});

Deno.test("computeMetrics() honours an explicit correct flag, custom radii and empty input", () => {
  const m = computeMetrics([{ label: 1, prediction: 1, radius: 0.5, correct: false }], [0, 0.4]);
  assert.deepEqual(m.certifiedAccuracy, [
    { radius: 0, count: 0, accuracy: 0 },
    { radius: 0.4, count: 0, accuracy: 0 },
  ]);
  assert.equal(m.acr, 0);
  const e = computeMetrics([]);
  assert.equal(e.acr, 0);
  assert.equal(e.counts.total, 0);
  assert.ok(e.certifiedAccuracy.every((c) => c.accuracy === 0));
});
