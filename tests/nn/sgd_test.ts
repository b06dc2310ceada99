/** SGD with momentum and weight decay against three PyTorch steps (sgd.json). */
import assert from "node:assert/strict";
import { backward, Var } from "../../compute/autograd.ts";
import * as F from "../../compute/functional.ts";
import { Tensor, tidy } from "../../compute/tensor.ts";
import { LeNet } from "../../src/nn/lenet.ts";
import { MultiStepLR, SGD } from "../../src/train/sgd.ts";
import { formulaInput, formulaLabels, loadFormulaWeights } from "./_formula.ts";

const fx = JSON.parse(
  Deno.readTextFileSync(new URL("../fixtures/models/sgd.json", import.meta.url)),
);

Deno.test("SGD() with momentum and weight decay follows PyTorch for 3 steps", () => {
  const model = new LeNet(0);
  loadFormulaWeights(model);
  const opt = new SGD(model.parameters(), {
    lr: fx.lr,
    momentum: fx.momentum,
    weightDecay: fx.weight_decay,
  });
  const x = Tensor.fromF32(formulaInput(4 * 784), [4, 1, 28, 28]).keep();
  const y = Tensor.fromI32(formulaLabels(4), [4, 1]).keep();
  const lossOf = () => F.crossEntropy(model.forward(Var.constant(x)), y);
  for (let step = 0; step < fx.steps; step++) {
    const loss = tidy(() => {
      const l = lossOf();
      backward(l);
      opt.step();
      model.zeroGrad();
      return l.value.item();
    });
    assert.ok(Math.abs(loss - fx.f64.losses[step]) < 1e-5, `step ${step}: ${loss}`);
  }
  const after = tidy(() => lossOf().value.item());
  assert.ok(Math.abs(after - fx.f64.loss_after) < 1e-5, `loss after: ${after}`);
  const params = new Map(model.namedParameters());
  for (const p of fx.f64.params) {
    const w = params.get(p.name)!.value.toF32();
    p.first.forEach((v: number, i: number) =>
      assert.ok(Math.abs(w[i] - v) < 1e-6 + 1e-5 * Math.abs(v), `${p.name}[${i}]`)
    );
  }
  x.dispose();
  y.dispose();
  opt.dispose();
});

Deno.test("MultiStepLR.lrAt() divides by 10 at each milestone", () => {
  const s = new MultiStepLR(0.01, [200, 400]);
  assert.equal(s.lrAt(0), 0.01);
  assert.equal(s.lrAt(199), 0.01);
  // torch.optim.lr_scheduler.MultiStepLR's rates to the last bit (PyTorch 1.13 prints
  // 0.001 and 0.0001 for these milestones: it multiplies by gamma one milestone at a time).
  assert.equal(s.lrAt(200), 0.001);
  assert.equal(s.lrAt(439), 0.0001);
  assert.equal(new MultiStepLR(0.1, [30, 60]).lrAt(60), 0.1 * 0.1 * 0.1);
});
