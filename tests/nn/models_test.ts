/**
 * LeNet and ResNet-110 against PyTorch (fixtures from
 * scripts/fixtures/make_model_fixtures.py, float64 reference on the same
 * float32 weights and inputs).
 */
import assert from "node:assert/strict";
import { backward, Var } from "../../compute/autograd.ts";
import * as F from "../../compute/functional.ts";
import { Tensor, tidy } from "../../compute/tensor.ts";
import { LeNet } from "../../src/nn/lenet.ts";
import type { Module } from "../../src/nn/module.ts";
import { ResNet110 } from "../../src/nn/resnet.ts";
import { buildModel, MODELS } from "../../src/train/models.ts";
import {
  formulaInput,
  formulaLabels,
  type GradStat,
  loadFormulaWeights,
  maxRelDiff,
  modelFixture,
} from "./_formula.ts";

/** Forward + cross-entropy backward; returns logits, loss and grads by name. */
function runModel(model: Module, shape: number[]) {
  return tidy(() => {
    const n = shape[0];
    const x = Var.constant(Tensor.fromF32(formulaInput(shape.reduce((a, b) => a * b)), shape));
    const y = Tensor.fromI32(formulaLabels(n), [n, 1]);
    const logits = model.forward(x);
    const loss = F.crossEntropy(logits, y);
    backward(loss);
    const grads = new Map(model.namedParameters().map(([k, p]) => [k, p.grad!.toF32()]));
    model.zeroGrad();
    return { logits: Array.from(logits.value.toF32()), loss: loss.value.item(), grads };
  });
}

function checkGrads(grads: Map<string, Float32Array>, expected: GradStat[], tol: number) {
  for (const e of expected) {
    const g = grads.get(e.name);
    assert.ok(g, `missing gradient for ${e.name}`);
    const absSum = g.reduce((a, v) => a + Math.abs(v), 0);
    assert.ok(
      Math.abs(absSum - e.abs_sum) <= tol * e.abs_sum + 1e-6,
      `${e.name}: sum |grad| ${absSum} vs ${e.abs_sum}`,
    );
    if (e.first) {
      const scale = Math.max(...e.first.map(Math.abs), e.abs_sum / g.length);
      for (let i = 0; i < e.first.length; i++) {
        assert.ok(
          Math.abs(g[i] - e.first[i]) <= tol * scale + 1e-7,
          `${e.name}[${i}]: ${g[i]} vs ${e.first[i]}`,
        );
      }
    }
  }
}

Deno.test("LeNet has 431,080 parameters and PyTorch's state-dict names", () => {
  const model = new LeNet(0);
  const fx = modelFixture("lenet");
  assert.equal(model.parameterCount(), 431080);
  assert.deepEqual(
    model.stateEntries().map((e) => [e.name, [...e.shape]]),
    fx.state_dict.map((e: [string, number[]]) => [e[0], e[1]]),
  );
});

Deno.test("LeNet forward and backward match PyTorch", () => {
  const fx = modelFixture("lenet");
  const model = new LeNet(0);
  loadFormulaWeights(model);
  const out = runModel(model, fx.input_shape);
  assert.ok(maxRelDiff(out.logits, fx.f64.logits) < 1e-4, "logits");
  assert.ok(Math.abs(out.loss - fx.f64.loss) < 1e-5 * Math.abs(fx.f64.loss), "loss");
  checkGrads(out.grads, fx.f64.grads, 1e-4);
});

Deno.test("ResNet-110 has 1,730,714 parameters and 668 state-dict entries named as PyTorch's", () => {
  const fx = modelFixture("resnet110");
  const model = new ResNet110(0);
  assert.equal(model.parameterCount(), 1730714);
  const entries = model.stateEntries();
  assert.equal(entries.length, 668);
  assert.deepEqual(
    entries.map((e) => [e.name, [...e.shape], e.kind]),
    fx.state_dict.map((e: [string, number[], string]) => [e[0], e[1], e[2]]),
  );
});

// A 2-image batch leaves some pre-activations within float rounding of zero: a kernel
// change of one ulp (say, dividing by 6 versus multiplying by 1/6 in a Winograd transform)
// can flip a ReLU mask there and move a layer's gradient sum by ~1e-3 while every kernel
// test stays green. Such a failure is worth a look at the ReLU inputs before the kernels.
Deno.test("ResNet-110 train and eval forward and backward match PyTorch", () => {
  const fx = modelFixture("resnet110");
  const model = new ResNet110(0);
  loadFormulaWeights(model);
  const evalLogits = tidy(() => {
    model.eval();
    const x = Var.constant(Tensor.fromF32(formulaInput(2 * 3 * 32 * 32), fx.input_shape));
    return Array.from(model.forward(x).value.toF32());
  });
  assert.ok(maxRelDiff(evalLogits, fx.f64.eval_logits) < 1e-4, "eval logits");
  model.train();
  const out = runModel(model, fx.input_shape);
  assert.ok(maxRelDiff(out.logits, fx.f64.train_logits ?? fx.f64.logits) < 1e-4, "train logits");
  assert.ok(Math.abs(out.loss - fx.f64.loss) < 1e-4 * Math.abs(fx.f64.loss), "loss");
  checkGrads(out.grads, fx.f64.grads, 1e-3);
});

Deno.test("every registered model's stem is its first state-dict entry", () => {
  for (const [name, spec] of Object.entries(MODELS)) {
    const first = buildModel(name, 0, 10).stateEntries()[0];
    assert.deepEqual({ name: first.name, shape: [...first.shape] }, {
      name: spec.stem.name,
      shape: [...spec.stem.shape],
    }, name);
  }
});
