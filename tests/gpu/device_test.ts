/**
 * The gpu device behind the same op surface: a LeNet MACER step, a ResNet-110
 * forward and certification counts agree with the cpu; device memory stays
 * flat over many steps. Shapes are small: Mesa's software adapter runs WGSL at
 * about 1 GFLOP/s.
 */
import assert from "node:assert/strict";
import { gpuBytes } from "../../compute/device.ts";
import { liveAllocations, Tensor, tidy } from "../../compute/tensor.ts";
import { Var } from "../../compute/autograd.ts";
import { LeNet } from "../../src/nn/lenet.ts";
import { ResNet110 } from "../../src/nn/resnet.ts";
import { buildModel } from "../../src/train/models.ts";
import { EngineSampler } from "../../src/smoothing/sampler.ts";
import { Trainer } from "../../src/train/trainer.ts";
import { ignoreGpu, maxRelDiff, on } from "./_gpu.ts";
import { batchOf, macer, seeded, state, updateDiffs } from "../_training_step.ts";

Deno.test({
  name: "a LeNet MACER step on the gpu gives the cpu's losses and weights",
  ignore: ignoreGpu,
  fn: async () => {
    const step = () => {
      const trainer = new Trainer(new LeNet(0), macer);
      const results = [0, 1].map(() => trainer.step(batchOf(6, 784), [1, 28, 28]));
      const weights = state(trainer.model);
      trainer.dispose();
      return { results, weights };
    };
    const cpu = await on("cpu", step);
    const gpu = await on("gpu", step);
    // Two steps: same noise (the same Philox stream), f32 sums in other orders.
    for (const [i, r] of cpu.results.entries()) {
      const g = gpu.results[i];
      assert.equal(g.kept, r.kept, `step ${i}: kept images`);
      assert.ok(
        maxRelDiff([r.classification, r.robustness], [g.classification, g.robustness]) < 1e-4,
      );
    }
    const before = state(new LeNet(0));
    for (const [name, d] of updateDiffs(before, cpu.weights, gpu.weights)) {
      assert.ok(d < 1e-3, `${name}: updates differ by ${d} of the largest`);
    }
  },
});

Deno.test({
  name: "a ResNet-50 forward on the gpu gives the cpu's logits (7x7 stem, padded max pool)",
  ignore: ignoreGpu,
  fn: async () => {
    // 64x64 instead of ImageNet's 224x224: the same ops at a twelfth of the work.
    const forward = () =>
      tidy(() =>
        buildModel("resnet50", 1, 1000).eval().forward(
          Var.constant(Tensor.fromF32(seeded(3 * 64 * 64, 8), [1, 3, 64, 64])),
        ).value.toF32()
      );
    const cpu = await on("cpu", forward);
    const gpu = await on("gpu", forward);
    const d = maxRelDiff(cpu, gpu);
    assert.ok(d < 1e-4, `relative difference ${d}`);
  },
});

Deno.test({
  name: "a ResNet-110 forward on the gpu gives the cpu's logits (train and eval mode)",
  ignore: ignoreGpu,
  fn: async () => {
    const forward = (train: boolean) => {
      const model = new ResNet110(0);
      train ? model.train() : model.eval();
      const logits = tidy(() =>
        model.forward(Var.constant(Tensor.fromF32(seeded(2 * 3072, 5), [2, 3, 32, 32]))).value
          .toF32()
      );
      return logits;
    };
    for (const train of [false, true]) {
      const cpu = await on("cpu", () => forward(train));
      const gpu = await on("gpu", () => forward(train));
      // 110 layers of f32 sums in other orders.
      const d = maxRelDiff(cpu, gpu);
      assert.ok(d < 1e-3, `${train ? "train" : "eval"} mode: relative difference ${d}`);
    }
  },
});

Deno.test({
  name:
    "a ResNet MACER step on the gpu gives the cpu's losses and weights (fused blocks decomposed)",
  ignore: ignoreGpu,
  fn: async () => {
    // Three blocks per stage: every fused residual-block op, forward and backward.
    const step = () => {
      const trainer = new Trainer(new ResNet110(0, 10, 3), { ...macer, gaussNum: 2 });
      const result = trainer.step(batchOf(2, 3072), [3, 32, 32]);
      const weights = state(trainer.model);
      trainer.dispose();
      return { result, weights };
    };
    const cpu = await on("cpu", step);
    const gpu = await on("gpu", step);
    assert.equal(gpu.result.kept, cpu.result.kept);
    const losses = maxRelDiff(
      [cpu.result.classification, cpu.result.robustness],
      [gpu.result.classification, gpu.result.robustness],
    );
    assert.ok(losses < 1e-3, `losses: relative difference ${losses}`);
    const before = state(new ResNet110(0, 10, 3));
    for (const [name, d] of updateDiffs(before, cpu.weights, gpu.weights)) {
      assert.ok(d < 2e-3, `${name}: updates differ by ${d} of the largest`);
    }
  },
});

Deno.test({
  name: "certification votes and soft sums on the gpu are the cpu's",
  ignore: ignoreGpu,
  fn: async () => {
    const sample = () => {
      const model = new LeNet(1);
      const sampler = new EngineSampler(model, seeded(784, 9), [1, 28, 28], {
        sigma: 0.5,
        beta: 16,
        seed: 4,
      });
      return sampler.sample(300, 128);
    };
    const cpu = await on("cpu", sample);
    const gpu = await on("gpu", sample);
    // The same noise; a vote can move only where two logits are within f32 rounding.
    const moved = cpu.counts.reduce((s, c, j) => s + Math.abs(c - gpu.counts[j]), 0);
    assert.equal(gpu.counts.reduce((a, b) => a + b), 300);
    assert.ok(moved <= 2, `votes moved: ${cpu.counts} vs ${gpu.counts}`);
    assert.ok(maxRelDiff(cpu.softSum, gpu.softSum) < 1e-3);
    assert.ok(maxRelDiff(cpu.softSumSq, gpu.softSumSq) < 1e-3);
  },
});

Deno.test({
  name: "device memory after 200 training steps equals that after 20",
  ignore: ignoreGpu,
  fn: async () => {
    await on("gpu", () => {
      const trainer = new Trainer(new LeNet(2), { ...macer, gaussNum: 2 });
      const batch = batchOf(2, 784);
      const run = (steps: number) => {
        for (let i = 0; i < steps; i++) trainer.step(batch, [1, 28, 28]);
        return { device: gpuBytes(), live: liveAllocations() };
      };
      const at20 = run(20);
      const at200 = run(180);
      trainer.dispose();
      assert.deepEqual(at200, at20);
    });
  },
});
