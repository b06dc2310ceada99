/**
 * Engine behaviour: ownership (no growth of native memory), bit-identical
 * reproducibility, clear errors for bad calls, and the noise generator.
 */
import assert from "node:assert/strict";
import { backward, Var } from "../../compute/autograd.ts";
import { ComputeError } from "../../compute/ffi.ts";
import * as F from "../../compute/functional.ts";
import * as ops from "../../compute/ops.ts";
import { liveAllocations, setThreads, Tensor, threads, tidy } from "../../compute/tensor.ts";
import { LeNet } from "../../src/nn/lenet.ts";
import { SGD } from "../../src/train/sgd.ts";

/** A small noisy training step on LeNet: tile, noise, forward, CE, backward, SGD. */
function trainer(seed: number) {
  const model = new LeNet(seed);
  const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  const images = Float32Array.from({ length: 8 * 784 }, (_, i) => (Math.sin(i * 0.37) + 1) / 2);
  const x = Tensor.fromF32(images, [8, 1, 28, 28]).keep();
  const y = Tensor.fromI32(Int32Array.from({ length: 32 }, (_, i) => (i >> 2) % 10), [32, 1])
    .keep();
  let offset = 0;
  const step = () =>
    tidy(() => {
      const noisy = ops.tileNoise(x, 4, 0.25, seed, offset);
      offset += noisy.size;
      const loss = F.crossEntropy(model.forward(Var.constant(noisy)), y);
      backward(loss);
      opt.step();
      model.zeroGrad();
      return loss.value.item();
    });
  return { step, model };
}

Deno.test("training keeps native memory flat: live tensors after 200 steps equal those after 20", () => {
  const { step } = trainer(1);
  for (let i = 0; i < 20; i++) step();
  const at20 = liveAllocations();
  for (let i = 0; i < 180; i++) step();
  assert.deepEqual(liveAllocations(), at20);
});

Deno.test("the same seed and thread count give a bit-identical loss after 5 steps", () => {
  const run = () => {
    const { step, model } = trainer(7);
    let loss = 0;
    for (let i = 0; i < 5; i++) loss = step();
    return { loss, w: model.fc1.weight.value.toF32() };
  };
  const a = run(), b = run();
  assert.equal(a.loss, b.loss);
  assert.deepEqual(a.w, b.w);
  const before = threads();
  try {
    setThreads(1);
    const c = run();
    assert.equal(c.loss, a.loss, "one thread gives the same result as several");
  } finally {
    setThreads(before);
  }
});

Deno.test("bad calls raise ComputeError and leave the library usable", () => {
  tidy(() => {
    const a = Tensor.fromF32([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = Tensor.fromF32([1, 2], [2]);
    assert.throws(() => ops.add(a, b), (e) => e instanceof ComputeError && /shape/.test(e.message));
    const idx = Tensor.fromI32([0, 1], [2, 1]);
    assert.throws(() => ops.gatherRows(a, a), /must be i32, got f32/);
    assert.throws(() => ops.relu(idx), /must be f32, got i32/);
    assert.throws(() => ops.gatherRows(a, Tensor.fromI32([0, 9], [2, 1])), /out of range/);
    assert.throws(() => ops.run("no_such_op", [a]), /unknown op/);
    assert.throws(() => ops.run("relu", []), /expected 1 inputs/);
    assert.throws(() => ops.conv2d(a, a, undefined, { stride: 1, padding: 0 }), /4 dimensions/);
    assert.throws(() => ops.maxPool2d(ops.zeros([1, 1, 4, 4]), 2, 0), /stride/);
    assert.throws(() => Tensor.fromF32([1, 2, 3], [2, 2]), /needs 16 bytes/);
    const sgd = { lr: 0.1, momentum: 0.9, weightDecay: 0, dampening: 0, nesterov: false };
    const [p, m] = [Tensor.fromF32([1, 2], [2]), ops.zeros([2])];
    assert.throws(
      () => ops.sgdSteps([{ param: p, buf: m, grad: p }], sgd, true),
      /sgd_step.*input 0 is updated in place and must not be passed twice/,
    );
    assert.throws(
      () => ops.sgdSteps([{ param: p, buf: m, grad: a }], sgd, true),
      /sgd_step.*tensor 0: param \[2\], buffer \[2\], grad \[2, 3\]/,
    );
    assert.throws(() => ops.run("sgd_step", [p, m, a, b], [0.1, 0.9, 0, 0, 0, 1]), /pairs/);
    const c = Tensor.fromF32([1], [1]);
    c.dispose();
    assert.throws(() => ops.relu(c), /after dispose/);
    assert.deepEqual(Array.from(ops.relu(Tensor.fromF32([-1, 2], [2])).toF32()), [0, 2]);
  });
});

Deno.test("backward() refuses a root without parameters or with many elements", () => {
  tidy(() => {
    const x = Var.constant(Tensor.fromF32([1, 2], [2]));
    assert.throws(() => backward(x), /does not depend/);
    const p = new Var(Tensor.fromF32([1, 2], [2]), true);
    assert.throws(() => backward(F.relu(p)), RangeError);
  });
});

Deno.test("randn() is reproducible, offset-addressable, thread-independent and standard normal", () => {
  tidy(() => {
    const a = ops.randn([1 << 16], 42, 0).toF32();
    assert.deepEqual(ops.randn([1 << 16], 42, 0).toF32(), a);
    assert.deepEqual(ops.randn([100], 42, 400).toF32(), a.subarray(400, 500));
    assert.notDeepEqual(ops.randn([100], 43, 0).toF32(), a.subarray(0, 100));
    const before = threads();
    setThreads(1);
    assert.deepEqual(ops.randn([1 << 16], 42, 0).toF32(), a);
    setThreads(before);
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    const variance = a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length;
    assert.ok(Math.abs(mean) < 0.02 && Math.abs(variance - 1) < 0.02, `${mean} ${variance}`);
    assert.throws(() => ops.randn([4], 1, 2), /multiple of 4/);
  });
});

Deno.test("tileNoise() repeats each image k times around its value", () => {
  tidy(() => {
    const row = 4096, sigma = 0.25;
    const x = Tensor.fromF32(Float32Array.from({ length: 2 * row }, (_, i) => i < row ? 1 : 5), [
      2,
      row,
    ]);
    const out = ops.tileNoise(x, 3, sigma, 1, 8);
    assert.deepEqual(out.shape, [6, row]);
    const v = out.toF32();
    // Each output row spreads around its image's value with standard deviation sigma (the sample
    // mean and deviation of 4,096 draws: standard errors 0.004 and 0.003), and no two rows
    // draw the same noise.
    for (let r = 0; r < 6; r++) {
      const d = Array.from(v.subarray(r * row, (r + 1) * row), (y) => y - (r < 3 ? 1 : 5));
      const mean = d.reduce((a, b) => a + b, 0) / row;
      const std = Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / (row - 1));
      assert.ok(Math.abs(mean) < 0.02, `row ${r}: mean offset ${mean}`);
      assert.ok(Math.abs(std / sigma - 1) < 0.05, `row ${r}: std ${std}, sigma ${sigma}`);
      if (r > 0) assert.notDeepEqual(v.subarray(r * row, r * row + 8), v.subarray(0, 8));
    }
    // Exactly x + sigma * z in f32, z the standard normals of randn() at the same seed and offset.
    const z = ops.randn([6 * row], 1, 8).toF32();
    const s32 = Math.fround(sigma);
    for (let i = 0; i < v.length; i++) {
      const want = Math.fround((i < 3 * row ? 1 : 5) + Math.fround(s32 * z[i]));
      if (v[i] !== want) assert.fail(`element ${i}: ${v[i]} vs ${want}`);
    }
  });
});

Deno.test("argmaxCounts() and softmaxStats() summarise a batch of logits per class", () => {
  tidy(() => {
    const z = Tensor.fromF32([3, 1, 0, 0, 2, 1, 5, 0, 1], [3, 3]);
    assert.deepEqual(Array.from(ops.argmaxCounts(z).toF32()), [2, 1, 0]);
    const s = ops.softmaxStats(z, 1).toF32();
    const row = (a: number[]) => a.map((v) => Math.exp(v) / a.reduce((t, u) => t + Math.exp(u), 0));
    const rows = [row([3, 1, 0]), row([0, 2, 1]), row([5, 0, 1])];
    for (let c = 0; c < 3; c++) {
      assert.ok(Math.abs(s[c] - rows.reduce((t, r) => t + r[c], 0)) < 1e-6);
      assert.ok(Math.abs(s[3 + c] - rows.reduce((t, r) => t + r[c] ** 2, 0)) < 1e-6);
    }
  });
});

Deno.test("tidy() frees what it created when its function throws", () => {
  const before = liveAllocations().tensors;
  assert.throws(() =>
    tidy(() => {
      Tensor.fromF32([1, 2, 3], [3]);
      throw new Error("boom");
    }), /boom/);
  assert.equal(liveAllocations().tensors, before);
});

Deno.test("backward() accumulates into leaves that share one gradient tensor", () => {
  tidy(() => {
    const a = new Var(Tensor.fromF32([1, 2], [2]), true);
    const b = new Var(Tensor.fromF32([3, 4], [2]), true);
    const z = F.sum(F.add(a, b));
    backward(z);
    backward(z);
    assert.deepEqual(Array.from(a.grad!.toF32()), [2, 2]);
    assert.deepEqual(Array.from(b.grad!.toF32()), [2, 2]);
  });
});
