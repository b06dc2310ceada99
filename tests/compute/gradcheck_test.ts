/**
 * Every differentiable op's backward kernel against central finite
 * differences of an independent float64 forward (tests/compute/_reference.ts).
 */
import assert from "node:assert/strict";
import { backward, Var } from "../../compute/autograd.ts";
import * as F from "../../compute/functional.ts";
import { Tensor, tidy } from "../../compute/tensor.ts";
import { ndtri } from "../../src/smoothing/normal.ts";
import * as ref from "./_reference.ts";

interface Input {
  data: Float64Array;
  shape: number[];
}

/**
 * Checks d/dX of L = sum(w * f(X)) for every input: ours (float32 kernels)
 * against float64 central differences of `reference`, and the forward values.
 */
function gradcheck(
  inputs: Input[],
  reference: (xs: Float64Array[]) => Float64Array,
  ours: (vs: Var[]) => Var,
  { tol = 2e-3, h = 1e-5, constant = [] as number[] } = {},
): void {
  tidy(() => {
    const vars = inputs.map((inp, i) =>
      new Var(Tensor.fromF32(Float32Array.from(inp.data), inp.shape), !constant.includes(i))
    );
    const out = ours(vars);
    const expected = reference(inputs.map((i) => i.data));
    const got = out.value.toF32();
    assert.equal(got.length, expected.length, "output size");
    const fscale = Math.max(1e-6, ...Array.from(expected, Math.abs));
    for (let i = 0; i < got.length; i++) {
      assert.ok(Math.abs(got[i] - expected[i]) <= 1e-5 * fscale + 1e-6, `forward[${i}]`);
    }
    const w = ref.data(got.length, 0.3);
    backward(out, Tensor.fromF32(Float32Array.from(w), out.shape));
    const loss = (xs: Float64Array[]) => reference(xs).reduce((s, v, i) => s + v * w[i], 0);
    inputs.forEach((inp, k) => {
      if (constant.includes(k)) return;
      const grad = vars[k].grad!.toF32();
      const numeric = new Float64Array(inp.data.length);
      for (let i = 0; i < inp.data.length; i++) {
        const xs = inputs.map((x) => x.data.slice());
        xs[k][i] += h;
        const up = loss(xs);
        xs[k][i] -= 2 * h;
        numeric[i] = (up - loss(xs)) / (2 * h);
      }
      const scale = Math.max(1e-6, ...Array.from(numeric, Math.abs));
      for (let i = 0; i < numeric.length; i++) {
        assert.ok(
          Math.abs(grad[i] - numeric[i]) <= tol * scale,
          `input ${k}[${i}]: analytic ${grad[i]} vs numeric ${numeric[i]} (scale ${scale})`,
        );
      }
    });
  });
}

const input = (shape: number[], seed: number, scale = 1, shift = 0): Input => ({
  data: ref.data(shape.reduce((a, b) => a * b, 1), seed, scale, shift),
  shape,
});

Deno.test("conv2d() gradients match finite differences (stride, padding, bias)", () => {
  for (const [stride, pad, bias] of [[1, 1, true], [2, 0, false], [2, 1, true], [1, 0, false]]) {
    const xs = [2, 3, 7, 6], ws = [4, 3, 3, 3];
    const inputs = [input(xs, 1), input(ws, 2, 0.3)];
    if (bias) inputs.push(input([4], 3, 0.1));
    gradcheck(
      inputs,
      ([x, w, b]) => ref.conv2d(x, xs, w, ws, b ?? null, stride as number, pad as number),
      ([x, w, b]) => F.conv2d(x, w, b, { stride: stride as number, padding: pad as number }),
    );
  }
});

Deno.test("conv2d() 1x1 and 5x5 kernels match finite differences", () => {
  for (const [k, stride] of [[1, 1], [1, 2], [5, 1]]) {
    const xs = [2, 2, 6, 6], ws = [3, 2, k, k];
    gradcheck(
      [input(xs, 4), input(ws, 5, 0.4)],
      ([x, w]) => ref.conv2d(x, xs, w, ws, null, stride, 0),
      ([x, w]) => F.conv2d(x, w, undefined, { stride, padding: 0 }),
    );
  }
});

Deno.test("linear() gradients match finite differences", () => {
  gradcheck(
    [input([3, 5], 1), input([4, 5], 2, 0.5), input([4], 3, 0.1)],
    ([x, w, b]) => ref.linear(x, 3, 5, w, 4, b),
    ([x, w, b]) => F.linear(x, w, b),
  );
});

Deno.test("batchNormTrain() gradients match finite differences", () => {
  const shape = [3, 2, 3, 4];
  gradcheck(
    [input(shape, 1, 1.5, 0.2), input([2], 2, 0.3, 1), input([2], 3, 0.2)],
    ([x, g, b]) => ref.batchNorm(x, shape, g, b, 1e-5),
    ([x, g, b]) => {
      const rm = Tensor.fromF32([0, 0], [2]), rv = Tensor.fromF32([1, 1], [2]);
      return F.batchNormTrain(x, g, b, { mean: rm, variance: rv, momentum: 0.1, eps: 1e-5 });
    },
    { tol: 5e-3, h: 1e-4 },
  );
});

Deno.test("batchNormTrain() with ReLU: gradients match finite differences", () => {
  const shape = [3, 2, 3, 4];
  const relu = (y: Float64Array) => y.map((v) => Math.max(v, 0));
  gradcheck(
    [input(shape, 1, 1.5, 0.2), input([2], 2, 0.3, 1), input([2], 3, 0.2)],
    ([x, g, b]) => relu(ref.batchNorm(x, shape, g, b, 1e-5)),
    ([x, g, b]) => {
      const rm = Tensor.fromF32([0, 0], [2]), rv = Tensor.fromF32([1, 1], [2]);
      return F.batchNormTrain(x, g, b, { mean: rm, variance: rv, momentum: 0.1, eps: 1e-5 }, true);
    },
    { tol: 5e-3, h: 1e-4 },
  );
});

Deno.test("batchNormEval() with ReLU is relu of batchNormEval()", () => {
  tidy(() => {
    const x = Var.constant(Tensor.fromF32(Float32Array.from(ref.data(24, 4, 2)), [2, 3, 2, 2]));
    const [g, b] = [
      Var.constant(Tensor.fromF32([0.5, -1, 2], [3])),
      Var.constant(Tensor.fromF32([0.1, 0, -0.2], [3])),
    ];
    const rm = Tensor.fromF32([0.1, -0.2, 0.3], [3]), rv = Tensor.fromF32([1, 0.5, 2], [3]);
    const plain = F.batchNormEval(x, g, b, { mean: rm, variance: rv, momentum: 0.1, eps: 1e-5 })
      .value.toF32();
    const fused = F.batchNormEval(
      x,
      g,
      b,
      { mean: rm, variance: rv, momentum: 0.1, eps: 1e-5 },
      true,
    ).value.toF32();
    assert.deepEqual(fused, plain.map((v) => Math.max(v, 0)));
    assert.ok(fused.some((v) => v === 0) && fused.some((v) => v > 0));
  });
});

Deno.test("addRelu() gradients match finite differences", () => {
  const s = [4, 5];
  const [a, b] = [input(s, 5), input(s, 6)];
  // Keep the sums away from the kink.
  b.data = b.data.map((v, i) => Math.abs(a.data[i] + v) < 0.05 ? v + 0.5 : v);
  gradcheck(
    [a, b],
    ([a, b]) => a.map((v, i) => Math.max(v + b[i], 0)),
    ([a, b]) => F.addRelu(a, b),
  );
});

Deno.test("maxPool2d() and avgPool2d() gradients match finite differences", () => {
  const shape = [2, 2, 6, 6];
  gradcheck(
    [input(shape, 1)],
    ([x]) => ref.pool(x, shape, 2, 2, "max"),
    ([x]) => F.maxPool2d(x, 2, 2),
  );
  gradcheck(
    [input(shape, 2)],
    ([x]) => ref.pool(x, shape, 3, 1, "avg"),
    ([x]) => F.avgPool2d(x, 3, 1),
  );
});

Deno.test("softmax() and logSoftmax() with a scale match finite differences", () => {
  for (const scale of [1, 16]) {
    for (const log of [false, true]) {
      gradcheck(
        [input([3, 5], 1, scale === 16 ? 0.2 : 2)],
        ([x]) => ref.softmax(x, 5, scale, log),
        ([x]) => log ? F.logSoftmax(x, 1, scale) : F.softmax(x, 1, scale),
        { h: 1e-6 },
      );
    }
  }
});

Deno.test("elementwise ops match finite differences", () => {
  const s = [4, 5];
  const away = input(s, 1, 1, 0); // relu: keep inputs away from the kink
  away.data = away.data.map((v) => Math.abs(v) < 0.05 ? 0.5 : v);
  gradcheck([away], ([x]) => x.map((v) => Math.max(v, 0)), ([x]) => F.relu(x));
  gradcheck([input(s, 2, 0.5, 1)], ([x]) => x.map(Math.log), ([x]) => F.log(x));
  gradcheck([input(s, 3, 0.4, 0.5)], ([x]) => x.map(ndtri), ([x]) => F.ndtri(x), { h: 1e-7 });
  gradcheck([input(s, 4)], ([x]) => x.map((v) => 3 * v - 2), ([x]) => F.affine(x, 3, -2));
  gradcheck(
    [input(s, 5), input(s, 6)],
    ([a, b]) => a.map((v, i) => v - 2 * b[i]),
    ([a, b]) => F.sub(a, F.add(b, b)),
  );
});

Deno.test("reductions, reshape, gather, top-2 and index select match finite differences", () => {
  gradcheck(
    [input([2, 3, 4], 1)],
    ([x]) =>
      Float64Array.from({ length: 8 }, (_, i) => {
        const [o, k] = [Math.floor(i / 4), i % 4];
        return (x[o * 12 + k] + x[o * 12 + 4 + k] + x[o * 12 + 8 + k]) / 3;
      }),
    ([x]) => F.meanDim(x, 1),
  );
  gradcheck(
    [input([2, 6], 2)],
    ([x]) => Float64Array.of(x.reduce((a, b) => a + b)),
    ([x]) => F.sum(F.reshape(x, [3, 4])),
  );
  const idx = Tensor.fromI32([2, 0, 1, 1, 3, 2], [3, 2]).keep();
  gradcheck(
    [input([3, 4], 3)],
    ([x]) => Float64Array.from([2, 0, 1, 1, 3, 2], (c, i) => x[Math.floor(i / 2) * 4 + c]),
    ([x]) => F.gatherRows(x, idx),
  );
  gradcheck(
    [input([3, 5], 4)],
    ([x]) =>
      Float64Array.from({ length: 6 }, (_, i) => {
        const row = Array.from(x.subarray(Math.floor(i / 2) * 5, Math.floor(i / 2) * 5 + 5));
        const sorted = [...row].sort((a, b) => b - a);
        return sorted[i % 2];
      }),
    ([x]) => F.topk2(x).values,
  );
  const rows = Tensor.fromI32([2, 0, 2], [3]).keep();
  gradcheck(
    [input([3, 2, 2], 5)],
    ([x]) => Float64Array.from([...x.subarray(8, 12), ...x.subarray(0, 4), ...x.subarray(8, 12)]),
    ([x]) => F.indexSelect(x, rows),
  );
  idx.dispose();
  rows.dispose();
});
