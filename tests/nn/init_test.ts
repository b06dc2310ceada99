/**
 * Initialisation as the authors' model.py: LeNet keeps PyTorch's defaults
 * (weights and biases ~ U(+-1/sqrt(fan_in))); ResNet-110 convs ~ N(0, 2 / (k*k*out)),
 * BN weight 1 and bias 0, running mean 0 and variance 1, fc with the default.
 */
import assert from "node:assert/strict";
import { LeNet } from "../../src/nn/lenet.ts";
import { ResNet110 } from "../../src/nn/resnet.ts";

function moments(v: Float32Array) {
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  const std = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / v.length);
  const maxAbs = v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  return { mean, std, maxAbs };
}

const FAN_IN: Record<string, number> = { conv1: 25, conv2: 500, fc1: 800, fc2: 500 };

Deno.test("LeNet() initialises weights and biases uniformly within 1/sqrt(fan_in)", () => {
  const model = new LeNet(3);
  for (const e of model.stateEntries()) {
    const v = e.read() as Float32Array;
    const fanIn = FAN_IN[e.name.split(".")[0]];
    const bound = 1 / Math.sqrt(fanIn);
    const m = moments(v);
    assert.ok(m.maxAbs <= bound, `${e.name}: max |w| ${m.maxAbs} > ${bound}`);
    if (v.length > 1000) {
      // U(-b, b) has standard deviation b / sqrt(3).
      assert.ok(Math.abs(m.std - bound / Math.sqrt(3)) < 0.05 * bound, `${e.name}: std ${m.std}`);
    }
  }
});

Deno.test("ResNet110() initialises convs kaiming-normal (fan out) and BN to identity", () => {
  const model = new ResNet110(5);
  for (const e of model.stateEntries()) {
    if (e.dtype === "i64") continue;
    const v = e.read() as Float32Array;
    const leaf = e.name.split(".").at(-1)!;
    if (e.shape.length === 4) {
      const [out, , kh, kw] = e.shape;
      const std = Math.sqrt(2 / (kh * kw * out));
      const m = moments(v);
      if (v.length >= 2000) {
        assert.ok(Math.abs(m.std - std) < 0.06 * std, `${e.name}: std ${m.std} vs ${std}`);
        assert.ok(Math.abs(m.mean) < 0.1 * std, `${e.name}: mean ${m.mean}`);
      }
    } else if (e.name.startsWith("fc.")) {
      assert.ok(moments(v).maxAbs <= 1 / 8, `${e.name} within 1/sqrt(64)`);
    } else {
      const want = leaf === "weight" || leaf === "running_var" ? 1 : 0;
      assert.ok(v.every((x) => x === want), `${e.name} is all ${want}`);
    }
  }
});

Deno.test("models initialised from the same seed are identical, from different seeds differ", () => {
  const a = new LeNet(1).fc1.weight.value.toF32();
  assert.deepEqual(new LeNet(1).fc1.weight.value.toF32(), a);
  assert.notDeepEqual(new LeNet(2).fc1.weight.value.toF32(), a);
});
