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

Deno.test("residualBlockTrain equals the fused ops it replaces, bit for bit, and the plain chain", () => {
  tidy(() => {
    const o = { stride: 1, padding: 1 };
    // 8x8 and 16x16 images; x also feeds a second use, so that its gradient
    // arrives partly collected (the op's optional last input).
    for (const hw of [8, 16]) {
      const leaves: [string, number[]][] = [
        ["x", [3, 8, hw, hw]],
        ["w1", [8, 8, 3, 3]],
        ["gamma1", [8]],
        ["beta1", [8]],
        ["w2", [8, 8, 3, 3]],
        ["gamma2", [8]],
        ["beta2", [8]],
      ];
      const stats = () => [running(8), running(8)];
      const [r1, r2] = [stats(), stats()];
      const [bn1f, bn2f] = r1;
      const block = gradients(leaves, ([x, w1, gamma1, beta1, w2, gamma2, beta2]) => {
        const c1 = { w: w1, o, gamma: gamma1, beta: beta1, running: bn1f };
        const c2 = { w: w2, o, gamma: gamma2, beta: beta2, running: bn2f };
        return F.add(F.residualBlockTrain(x, c1, c2), x);
      });
      const [bn1u, bn2u] = r2;
      const ops3 = gradients(leaves, ([x, w1, gamma1, beta1, w2, gamma2, beta2]) => {
        const c1 = F.conv2dStats(x, w1, undefined, o);
        const c2 = F.bnReluConv2dStats(c1.y, gamma1, beta1, bn1u, c1.stats, w2, o);
        return F.add(F.batchNormAddReluTrain(c2.y, gamma2, beta2, x, bn2u, c2.stats), x);
      });
      const plain = gradients(leaves, ([x, w1, gamma1, beta1, w2, gamma2, beta2]) => {
        const h = F.batchNormTrain(F.conv2d(x, w1, undefined, o), gamma1, beta1, running(8), true);
        const z = F.batchNormTrain(F.conv2d(h, w2, undefined, o), gamma2, beta2, running(8));
        return F.add(F.addRelu(z, x), x);
      });
      assert.deepEqual(block.y.toF32(), ops3.y.toF32(), `y (${hw}x${hw})`);
      assertClose(block.y, plain.y, 1e-5, `y against the plain chain (${hw}x${hw})`);
      leaves.forEach(([name], i) => {
        const what = `d${name} (${hw}x${hw})`;
        assert.deepEqual(block.grads[i].toF32(), ops3.grads[i].toF32(), what);
        assertClose(block.grads[i], plain.grads[i], 1e-4, `${what} against the plain chain`);
      });
      for (const [f, u] of [[bn1f, bn1u], [bn2f, bn2u]]) {
        assert.deepEqual(f.mean.toF32(), u.mean.toF32(), "running mean");
        assert.deepEqual(f.variance.toF32(), u.variance.toF32(), "running variance");
      }
    }
  });
});

Deno.test("residualRunTrain equals its blocks one by one, the first batch-norm passes chained", () => {
  tidy(() => {
    const o = { stride: 1, padding: 1 };
    for (const hw of [8, 16]) {
      const blockLeaves = (b: number): [string, number[]][] =>
        [["w1", [8, 8, 3, 3]], ["g1", [8]], ["b1", [8]], ["w2", [8, 8, 3, 3]], ["g2", [8]], [
          "b2",
          [8],
        ]].map(([name, shape]) => [`${name}.${b}`, shape as number[]]);
      const leaves: [string, number[]][] = [
        ["x", [3, 8, hw, hw]],
        ...blockLeaves(0),
        ...blockLeaves(1),
        ...blockLeaves(2),
      ];
      const stats = [0, 1, 2].map(() => [running(8), running(8)]);
      const blocks = (v: Var[], st: ops.RunningStats[][]) =>
        [0, 1, 2].map((b) => {
          const [w1, g1, b1, w2, g2, b2] = v.slice(1 + 6 * b, 7 + 6 * b);
          return [
            { w: w1, o, gamma: g1, beta: b1, running: st[b][0] },
            { w: w2, o, gamma: g2, beta: b2, running: st[b][1] },
          ] as const;
        });
      const run = gradients(leaves, (v) => F.add(F.residualRunTrain(v[0], blocks(v, stats)), v[0]));
      const stats1 = [0, 1, 2].map(() => [running(8), running(8)]);
      const oneByOne = gradients(leaves, (v) => {
        const out = blocks(v, stats1).reduce(
          (h, [c1, c2]) => F.residualBlockTrain(h, c1, c2),
          v[0],
        );
        return F.add(out, v[0]);
      });
      assert.deepEqual(run.y.toF32(), oneByOne.y.toF32(), `y (${hw}x${hw})`);
      leaves.forEach(([name], i) => {
        assertClose(run.grads[i], oneByOne.grads[i], 1e-5, `d${name} (${hw}x${hw})`);
      });
      stats.flat().forEach((s, i) => {
        assert.deepEqual(s.variance.toF32(), stats1.flat()[i].variance.toF32(), "running variance");
      });
    }
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
    const t = { x, w1: w, z1: x, w2: w, z2: x };
    const bn1 = { gamma: c8, affine: [c8, c8, c8, c8] as const };
    const bn2 = { gamma: c8, mean: c8, invstd: c8 };
    const o2 = { conv1: o, conv2: o };
    assert.throws(
      () => ops.residualBlockBackward(t, bn1, { ...bn2, invstd: c7 }, { out: x, dout: x }, o2),
      /residual_block_backward.*input 12 is \[7\], expected \[8\]/,
    );
    assert.throws(
      () => ops.residualBlockBackward(t, bn1, bn2, { out: x, dout: w }, o2),
      /residual_block_backward.*input 14 is \[8, 8, 3, 3\], expected \[2, 8, 8, 8\]/,
    );
    assert.throws(
      () =>
        ops.residualBlockBackward(t, bn1, bn2, { dr: x, dgamma2: c7, dbeta2: c8 }, {
          ...o2,
          previous: { z2: x, mean: c8, invstd: c8 },
        }),
      /residual_block_backward.*input 14 is \[7\], expected \[8\]/,
    );
    assert.throws(
      () => ops.batchNormTrainAffine(c8, c8, running(7), [c8, c8], 128),
      /batch_norm_train_affine.*running statistics/,
    );
  });
});
