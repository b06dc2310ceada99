/**
 * The MACER loss against PyTorch (tests/fixtures/models/macer_loss.json, written by
 * scripts/fixtures/make_model_fixtures.py; float64 reference on float32 weights and
 * inputs), and Cohen's Gaussian-augmentation loss against a direct computation.
 */
import assert from "node:assert/strict";
import { backward, Var } from "../../compute/autograd.ts";
import * as F from "../../compute/functional.ts";
import { Tensor, tidy } from "../../compute/tensor.ts";
import { LeNet } from "../../src/nn/lenet.ts";
import { macerLossFromLogits, noisyCopies } from "../../src/train/macer_loss.ts";
import { readLossValues } from "../../src/train/loss_values.ts";
import { gaussianLoss } from "../../src/train/gaussian_loss.ts";
import { formulaInput, type GradStat, loadFormulaWeights, modelFixture } from "../nn/_formula.ts";

const fixture = modelFixture("macer_loss");

function relClose(a: number, b: number, tol: number): boolean {
  return Math.abs(a - b) <= tol * Math.max(Math.abs(b), 1e-12);
}

for (const c of fixture.cases) {
  Deno.test(`macerLossFromLogits() matches PyTorch on the "${c.name}" case`, () => {
    const { n, k, sigma, lbd, gamma, beta } = fixture;
    const model = new LeNet(0);
    loadFormulaWeights(model);
    for (const [name, factor] of Object.entries(c.weight_scale as Record<string, number>)) {
      const e = model.stateEntries().find((s) => s.name === name)!;
      const w = e.read() as Float32Array;
      for (let i = 0; i < w.length; i++) w[i] = Math.fround(w[i] * factor);
      e.write(w);
    }
    model.train();
    const out = tidy(() => {
      const x = Tensor.fromF32(formulaInput(n * 784), [n, 1, 28, 28]);
      const eps = new Float32Array(n * k * 784);
      for (let i = 0; i < eps.length; i++) eps[i] = Math.sin(0.013 * i * i + 0.5) * 0.8;
      const noisy = noisyCopies(x, k, sigma, { eps: Tensor.fromF32(eps, [n * k, 1, 28, 28]) });
      const logits = model.forward(Var.constant(noisy));
      const r = macerLossFromLogits(logits, Int32Array.from(c.labels), {
        sigma,
        k,
        lbd,
        gamma,
        beta,
      });
      backward(r.loss);
      const grads = new Map(model.namedParameters().map(([name, p]) => [name, p.grad!.toF32()]));
      model.zeroGrad();
      return { ...readLossValues(r.loss, r.parts), grads };
    });
    const ref = c.f64;
    assert.equal(out.kept, ref.kept, "kept images");
    assert.ok(relClose(out.loss, ref.loss, 1e-4), `loss ${out.loss} vs ${ref.loss}`);
    assert.ok(
      relClose(out.classification, ref.classification_loss, 1e-4),
      `classification ${out.classification} vs ${ref.classification_loss}`,
    );
    assert.ok(
      Math.abs(out.robustness - ref.robustness_loss) <= 1e-4 * Math.max(ref.robustness_loss, 1),
      `robustness ${out.robustness} vs ${ref.robustness_loss}`,
    );
    for (const e of ref.grads as GradStat[]) {
      const g = out.grads.get(e.name);
      assert.ok(g, `missing gradient for ${e.name}`);
      assert.deepEqual(e.shape.reduce((a, b) => a * b, 1), g.length);
      let sum = 0, abs = 0;
      for (const v of g) {
        sum += v;
        abs += Math.abs(v);
      }
      assert.ok(relClose(abs, e.abs_sum, 1e-4), `${e.name}: sum |grad| ${abs} vs ${e.abs_sum}`);
      assert.ok(
        Math.abs(sum - e.sum) <= 1e-4 * e.abs_sum,
        `${e.name}: sum grad ${sum} vs ${e.sum}`,
      );
      const scale = Math.max(...(e.first ?? []).map(Math.abs), e.abs_sum / g.length);
      (e.first ?? []).forEach((v, i) => {
        assert.ok(Math.abs(g[i] - v) <= 1e-4 * scale, `${e.name}[${i}]: ${g[i]} vs ${v}`);
      });
    }
  });
}

Deno.test("macerLossFromLogits() rejects logits that do not match n * k", () => {
  tidy(() => {
    const logits = Var.constant(Tensor.fromF32(new Float32Array(30), [3, 10]));
    assert.throws(
      () =>
        macerLossFromLogits(logits, Int32Array.of(0, 1), {
          sigma: 0.25,
          k: 2,
          lbd: 12,
          gamma: 8,
          beta: 16,
        }),
      RangeError,
    );
  });
});

Deno.test("gaussianLoss() is the cross-entropy of one noisy copy per image", () => {
  const model = new LeNet(3);
  model.train();
  const n = 4;
  const x = formulaInput(n * 784);
  const labels = Int32Array.of(1, 2, 3, 4);
  const noise = { seed: 11, offset: 0 };
  const [loss, direct] = tidy(() => {
    const xt = Tensor.fromF32(x, [n, 1, 28, 28]);
    const r = gaussianLoss(model, xt, labels, 0.25, noise);
    const values = readLossValues(r.loss, r.parts);
    // The summed loss is n times the mean; no robustness term.
    assert.ok(Math.abs(values.classification - n * values.loss) < 1e-5 * n * values.loss);
    assert.deepEqual([values.robustness, values.kept], [0, 0]);
    const noisy = noisyCopies(xt, 1, 0.25, noise);
    const ce = F.crossEntropy(model.forward(Var.constant(noisy)), Tensor.fromI32(labels, [n, 1]));
    return [values.loss, ce.value.item()];
  });
  assert.ok(Number.isFinite(loss) && loss > 0);
  assert.ok(Math.abs(loss - direct) < 1e-6, `${loss} vs ${direct}`);
  // A fresh stream position gives different noise, hence a different loss.
  const other = tidy(() =>
    gaussianLoss(model, Tensor.fromF32(x, [n, 1, 28, 28]), labels, 0.25, { seed: 11, offset: 4096 })
      .loss.value.item()
  );
  assert.notEqual(other, loss);
  // Zero noise gives the clean cross-entropy.
  const clean = tidy(() => {
    const xt = Tensor.fromF32(x, [n, 1, 28, 28]);
    const a = gaussianLoss(model, xt, labels, 0, noise).loss.value.item();
    const b = F.crossEntropy(model.forward(Var.constant(xt)), Tensor.fromI32(labels, [n, 1]));
    return [a, b.value.item()];
  });
  assert.ok(Math.abs(clean[0] - clean[1]) < 1e-6);
});
