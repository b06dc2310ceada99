/**
 * The CPU kernels at every SIMD level this CPU has give the same training
 * step: a ResNet MACER step (3x3 convolutions on Winograd at AVX-512, on
 * im2col + GEMM below it) and a LeNet one, each level against the CPU's own.
 */
import assert from "node:assert/strict";
import { cpuSimdLevels } from "../../compute/device.ts";
import { setSimd, simdLevel } from "../../compute/tensor.ts";
import { LeNet } from "../../src/nn/lenet.ts";
import type { Module } from "../../src/nn/module.ts";
import { ResNet110 } from "../../src/nn/resnet.ts";
import { Trainer } from "../../src/train/trainer.ts";
import { batchOf, macer, state, updateDiffs } from "../_training_step.ts";

const levels = cpuSimdLevels();
const cpu = levels[0];

/** One MACER step at `level`: its losses and the weights after it. */
function stepAt(level: string, model: () => Module, size: number, shape: number[]) {
  setSimd(level);
  try {
    assert.equal(simdLevel(), level);
    const trainer = new Trainer(model(), { ...macer, gaussNum: 2 });
    const result = trainer.step(batchOf(2, size), shape);
    const weights = state(trainer.model);
    trainer.dispose();
    return { result, weights };
  } finally {
    setSimd(cpu);
  }
}

for (
  const [name, model, size, shape] of [
    ["LeNet", () => new LeNet(0), 784, [1, 28, 28]],
    ["ResNet (3 blocks a stage)", () => new ResNet110(0, 10, 3), 3072, [3, 32, 32]],
  ] as const
) {
  Deno.test(`a ${name} MACER step agrees at every SIMD level (${levels.join(", ")})`, () => {
    const native = stepAt(cpu, model, size, [...shape]);
    const before = state(model());
    for (const level of levels.slice(1)) {
      const got = stepAt(level, model, size, [...shape]);
      assert.equal(got.result.kept, native.result.kept, `${level}: kept images`);
      const loss = Math.abs(got.result.classification - native.result.classification);
      assert.ok(loss < 1e-4 * (1 + Math.abs(native.result.classification)), `${level}: loss`);
      for (const [entry, d] of updateDiffs(before, native.weights, got.weights)) {
        assert.ok(d < 2e-3, `${level}, ${entry}: updates differ by ${d} of the largest`);
      }
    }
  });
}

Deno.test("setSimd refuses a level that does not exist or that this CPU lacks", () => {
  assert.throws(() => setSimd("sse4"), /expected avx512, avx2 or portable/);
  if (cpu !== "avx512") {
    assert.throws(() => setSimd("avx512"), /more than this CPU has/);
  }
  assert.equal(simdLevel(), cpu);
});
