/**
 * The training loop: schedule placement, divergence handling, memory.
 */
import assert from "node:assert/strict";
import { staysFlat } from "./_memory.ts";
import { BatchLoader } from "../../src/data/loader.ts";
import type { ImageDataset } from "../../src/data/types.ts";
import { LeNet } from "../../src/nn/lenet.ts";
import { Trainer, TrainingDivergedError } from "../../src/train/trainer.ts";

function digits(count: number): ImageDataset {
  return {
    name: "mnist",
    split: "train",
    count,
    channels: 1,
    height: 28,
    width: 28,
    classes: 10,
    images: Uint8Array.from({ length: count * 784 }, (_, i) => (i * 7919) % 251),
    labels: Uint8Array.from({ length: count }, (_, i) => i % 10),
  };
}

const base = {
  sigma: 0.25,
  gaussNum: 2,
  lbd: 12,
  gamma: 8,
  beta: 16,
  lr: 0.01,
  noiseSeed: 0,
  dataSeed: 0,
};

Deno.test("Trainer.trainEpoch() uses main.py's learning rate for each epoch", () => {
  const t = new Trainer(new LeNet(0), { ...base, method: "macer", milestones: [2, 3] });
  const loader = new BatchLoader(digits(8), {
    batchSize: 8,
    shuffle: true,
    augment: true,
    seed: 0,
  });
  const lrs = [1, 2, 3].map(() => t.trainEpoch(loader, [1, 28, 28]).lr);
  assert.ok(Math.abs(lrs[0] - 0.01) < 1e-15);
  assert.ok(Math.abs(lrs[1] - 0.001) < 1e-15);
  assert.ok(Math.abs(lrs[2] - 0.0001) < 1e-15);
  assert.equal(t.epoch, 3);
  t.dispose();
});

Deno.test("Trainer.trainEpoch() keeps native memory flat and reports per-image losses", async () => {
  for (const method of ["macer", "gaussian"] as const) {
    const t = new Trainer(new LeNet(1), { ...base, method });
    const loader = new BatchLoader(digits(20), {
      batchSize: 8,
      shuffle: true,
      augment: true,
      seed: 1,
    });
    const steps: number[] = [];
    const r1 = t.trainEpoch(loader, [1, 28, 28], (p) => steps.push(p.step));
    assert.deepEqual(steps, [1, 2, 3]);
    assert.equal(r1.images, 20);
    assert.ok(r1.classification > 0 && r1.classification < 10, `${method}: ${r1.classification}`);
    if (method === "gaussian") assert.equal(r1.robustness, 0);
    t.trainEpoch(loader, [1, 28, 28]);
    assert.ok(await staysFlat(() => t.trainEpoch(loader, [1, 28, 28])), `${method}: memory grew`);
    t.dispose();
  }
});

Deno.test("Trainer.trainEpoch() stops on a NaN loss without stepping", () => {
  const model = new LeNet(2);
  const fc2 = model.stateEntries().find((e) => e.name === "fc2.bias")!;
  fc2.write(new Float32Array(10).fill(NaN));
  const conv1 = model.stateEntries().find((e) => e.name === "conv1.weight")!;
  const w0 = Array.from(conv1.read() as Float32Array);
  const t = new Trainer(model, { ...base, method: "macer" });
  const loader = new BatchLoader(digits(8), {
    batchSize: 4,
    shuffle: true,
    augment: true,
    seed: 2,
  });
  assert.throws(() => t.trainEpoch(loader, [1, 28, 28]), (e: unknown) => {
    assert.ok(e instanceof TrainingDivergedError);
    assert.equal(e.epoch, 1);
    assert.equal(e.step, 1);
    assert.match(e.message, /NaN or infinite at epoch 1, step 1/);
    return true;
  });
  assert.deepEqual(Array.from(conv1.read() as Float32Array), w0);
  assert.equal(t.epoch, 0);
  assert.equal(t.optimizer.buffers, null);
  t.dispose();
});

Deno.test("Trainer refuses baseline settings out of range", () => {
  for (const baseline of [{ numNoiseVec: 0 }, { numSteps: 1.5 }, { warmup: 0 }, { mixStep: -1 }]) {
    assert.throws(
      () => new Trainer(new LeNet(0), { ...base, method: "smoothmix", baseline }),
      RangeError,
      JSON.stringify(baseline),
    );
  }
});
