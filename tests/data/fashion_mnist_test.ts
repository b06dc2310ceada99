import assert from "node:assert/strict";
import { loadDataset, summarize } from "../../src/data/mod.ts";
import { exists, testNeeding } from "../_tools.ts";

const ROOT = "/usr/share/datasets/fashion-mnist";
const fashion = {
  tool: `Fashion-MNIST in ${ROOT} (dataset-fashion-mnist)`,
  available: await exists(`${ROOT}/train-images-idx3-ubyte.gz`),
};

testNeeding(
  [fashion],
  "loadDataset() reads the real Fashion-MNIST: 60,000 + 10,000 images, balanced classes",
  async () => {
    const train = summarize(await loadDataset("fashion-mnist", { root: ROOT, split: "train" }));
    const test = summarize(await loadDataset("fashion-mnist", { root: ROOT, split: "test" }));
    assert.deepEqual(train.shape, [60_000, 1, 28, 28]);
    assert.deepEqual(test.shape, [10_000, 1, 28, 28]);
    assert.deepEqual(train.label_counts, new Array(10).fill(6000));
    assert.deepEqual(test.label_counts, new Array(10).fill(1000));
    assert.deepEqual([train.min, train.max], [0, 1]);
    // Fashion-MNIST's well-known training mean is 0.2860.
    assert.ok(Math.abs(train.mean - 0.2860) < 5e-4, `mean ${train.mean}`);
  },
);
