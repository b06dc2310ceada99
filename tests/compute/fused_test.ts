/**
 * The fused training-mode ops against the chains of plain ops they replace:
 * the same outputs, gradients (for a random output gradient) and running
 * statistics, up to float rounding.
 */
import assert from "node:assert/strict";
import { backward, Var } from "../../compute/autograd.ts";
import * as F from "../../compute/functional.ts";
import * as ops from "../../compute/ops.ts";
import { Tensor, tidy } from "../../compute/tensor.ts";

const wave = (n: number, k: number) =>
  Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 * k + k) + 0.1 * k);
const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const leaf = (shape: number[], k: number) =>
  new Var(Tensor.fromF32(wave(size(shape), k), shape), true);
const running = (c: number): ops.RunningStats => ({
  mean: ops.full([c], 0),
  variance: ops.full([c], 1),
  momentum: 0.1,
  eps: 1e-5,
});

function assertClose(got: Tensor, want: Tensor, rel: number, what: string) {
  const [g, w] = [got.toF32(), want.toF32()];
  const scale = w.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-30);
  const worst = g.reduce((m, v, i) => Math.max(m, Math.abs(v - w[i])), 0);
  assert.ok(worst <= rel * scale, `${what}: max difference ${worst} (scale ${scale})`);
}

/** Runs `chain` on fresh leaves, backward from a fixed output gradient. */
function gradients(leaves: [string, number[]][], chain: (v: Var[]) => Var) {
  const vars = leaves.map(([, shape], i) => leaf(shape, i + 1));
  const y = chain(vars);
  backward(y, Tensor.fromF32(wave(y.value.size, 9), [...y.shape]));
  return { y: y.value, grads: vars.map((v) => v.grad!) };
}

Deno.test("bnReluConv2dStats equals conv2d, batchNormTrain with ReLU, then conv2d", () => {
  tidy(() => {
    const o = { stride: 1, padding: 1 };
    // 8x8 images take the gather transforms, 16x16 the row transforms.
    for (const hw of [8, 16]) {
      const leaves: [string, number[]][] = [
        ["x0", [4, 8, hw, hw]],
        ["w0", [8, 8, 3, 3]],
        ["gamma", [8]],
        ["beta", [8]],
        ["w", [8, 8, 3, 3]],
      ];
      const [rf, ru] = [running(8), running(8)];
      const fused = gradients(leaves, ([x0, w0, gamma, beta, w]) => {
        const c1 = F.conv2dStats(x0, w0, undefined, o);
        return F.bnReluConv2dStats(c1.y, gamma, beta, rf, c1.stats, w, o).y;
      });
      const plain = gradients(leaves, ([x0, w0, gamma, beta, w]) => {
        const h = F.batchNormTrain(F.conv2d(x0, w0, undefined, o), gamma, beta, ru, true);
        return F.conv2d(h, w, undefined, o);
      });
      assertClose(fused.y, plain.y, 1e-5, `y (${hw}x${hw})`);
      leaves.forEach(([name], i) => {
        assertClose(fused.grads[i], plain.grads[i], 1e-4, `d${name} (${hw}x${hw})`);
      });
      assertClose(rf.mean, ru.mean, 1e-6, "running mean");
      assertClose(rf.variance, ru.variance, 1e-6, "running variance");
    }
  });
});

Deno.test("batchNormAddReluTrain with conv2dStats statistics equals batchNormTrain then addRelu", () => {
  tidy(() => {
    const o = { stride: 1, padding: 1 };
    const leaves: [string, number[]][] = [
      ["x0", [3, 8, 8, 8]],
      ["w0", [8, 8, 3, 3]],
      ["gamma", [8]],
      ["beta", [8]],
      ["r", [3, 8, 8, 8]],
    ];
    const [rf, ru] = [running(8), running(8)];
    const fused = gradients(leaves, ([x0, w0, gamma, beta, r]) => {
      const c = F.conv2dStats(x0, w0, undefined, o);
      return F.batchNormAddReluTrain(c.y, gamma, beta, r, rf, c.stats);
    });
    const plain = gradients(leaves, ([x0, w0, gamma, beta, r]) => {
      const x = F.conv2d(x0, w0, undefined, o);
      return F.addRelu(F.batchNormTrain(x, gamma, beta, ru), r);
    });
    assertClose(fused.y, plain.y, 1e-5, "y");
    leaves.forEach(([name], i) => assertClose(fused.grads[i], plain.grads[i], 1e-4, `d${name}`));
    assertClose(rf.variance, ru.variance, 1e-6, "running variance");
  });
});

Deno.test("a prologue needs with_stats, and its inputs one value per input channel", () => {
  tidy(() => {
    const x = Tensor.fromF32(wave(2 * 8 * 8 * 8, 1), [2, 8, 8, 8]);
    const w = Tensor.fromF32(wave(8 * 8 * 9, 2), [8, 8, 3, 3]);
    const bad = ops.full([7], 1);
    assert.throws(
      () => ops.conv2dStats(x, w, undefined, { stride: 1, padding: 1 }, [bad, bad]),
      /prologue input .*expected \[8\]/,
    );
  });
});

Deno.test("the fused ops refuse inputs of the wrong shape with the op's name and what was expected", () => {
  tidy(() => {
    const x = Tensor.fromF32(wave(2 * 8 * 8 * 8, 1), [2, 8, 8, 8]);
    const w = Tensor.fromF32(wave(8 * 8 * 9, 2), [8, 8, 3, 3]);
    const [c8, c7] = [ops.full([8], 1), ops.full([7], 1)];
    const o = { stride: 1, padding: 1 };
    assert.throws(
      () => ops.batchNormTrain(x, c8, c8, running(8), false, [c7, c8]),
      /batch_norm_train.*input 3 is \[7\], expected \[8\]/,
    );
    assert.throws(
      () => ops.batchNormAddReluTrain(x, c8, c8, ops.full([2, 8, 8, 7], 0), running(8)),
      /batch_norm_add_relu_train/,
    );
    assert.throws(
      () => ops.conv2dBackward(x, w, x, { ...o, withBias: false, needDx: true, dxAcc: w }),
      /conv2d_backward.*dx_acc \[8, 8, 3, 3\]/,
    );
    assert.throws(
      () => ops.bnReluConv2dBackward(x, w, x, c8, c8, [c8, c8, c8, c7], o),
      /bn_relu_conv2d_backward.*input 8 is \[7\], expected \[8\]/,
    );
    assert.throws(
      () => ops.batchNormTrainAffine(c8, c8, running(7), [c8, c8], 128),
      /batch_norm_train_affine.*running statistics/,
    );
  });
});
