/**
 * The fused evaluation-mode convolution + batch norm equals the separate ops
 * (convolution, batch norm with running statistics, shortcut sum, ReLU).
 */
import assert from "node:assert/strict";
import { Var } from "../../compute/autograd.ts";
import * as F from "../../compute/functional.ts";
import { setThreads, Tensor, threads, tidy } from "../../compute/tensor.ts";
import { maxRelDiff } from "../nn/_formula.ts";

const values = (n: number, seed: number, lo: number, hi: number) =>
  Float32Array.from(
    { length: n },
    (_, i) => lo + (hi - lo) * (Math.sin(i * 12.9898 + seed) + 1) / 2,
  );

const constant = (shape: number[], seed: number, lo = -1, hi = 1) =>
  Var.constant(Tensor.fromF32(values(shape.reduce((a, b) => a * b, 1), seed, lo, hi), shape));

Deno.test("conv2dBnEval equals conv2d + batchNormEval (+ shortcut, ReLU)", () => {
  // [n, c, o, h, kernel, stride, padding]: Winograd, im2col 3x3 s1, 3x3 s2, 1x1 s2.
  const cases = [
    [4, 16, 16, 16, 3, 1, 1],
    [3, 3, 16, 10, 3, 1, 1],
    [5, 16, 32, 8, 3, 2, 1],
    [3, 16, 32, 8, 1, 2, 0],
  ];
  for (const [n, c, o, h, k, stride, padding] of cases) {
    tidy(() => {
      const x = constant([n, c, h, h], 1);
      const w = constant([o, c, k, k], 2, -0.3, 0.3);
      const gamma = constant([o], 3, 0.5, 1.5);
      const beta = constant([o], 4, -0.2, 0.2);
      const stats = {
        mean: constant([o], 5, -0.3, 0.3).value,
        variance: constant([o], 6, 0.2, 2).value,
        momentum: 0.1,
        eps: 1e-5,
      };
      const conv = F.conv2d(x, w, undefined, { stride, padding });
      const residual = constant(conv.shape as number[], 7);
      for (const relu of [false, true]) {
        for (const withResidual of [false, true]) {
          let want = F.batchNormEval(conv, gamma, beta, stats, relu && !withResidual);
          if (withResidual) want = relu ? F.addRelu(want, residual) : F.add(want, residual);
          const fused = () =>
            F.conv2dBnEval(x, w, gamma, beta, stats, {
              stride,
              padding,
              relu,
              residual: withResidual ? residual : undefined,
            }).value.toF32();
          const got = fused();
          const what = `${[n, c, o, h, k, stride, padding]} relu ${relu} residual ${withResidual}`;
          assert.deepEqual(
            F.conv2dBnEval(x, w, gamma, beta, stats, { stride, padding }).shape,
            want.shape,
          );
          assert.ok(
            maxRelDiff(got, want.value.toF32()) < 1e-5,
            `${what}: ${maxRelDiff(got, want.value.toF32())}`,
          );
          const before = threads();
          setThreads(1);
          try {
            assert.deepEqual(fused(), got, `${what}: one thread`);
          } finally {
            setThreads(before);
          }
        }
      }
    });
  }
});
