/**
 * The baselines' losses, gradients and attack steps against PyTorch
 * (tests/fixtures/models/baselines.json, written by
 * scripts/fixtures/make_baseline_fixtures.py; float64 reference, the same inputs,
 * weights, noise and mixing weights on both sides).
 */
import assert from "node:assert/strict";
import { backward, type Var } from "../../compute/autograd.ts";
import * as ops from "../../compute/ops.ts";
import { Tensor, tidy } from "../../compute/tensor.ts";
import { LeNet } from "../../src/nn/lenet.ts";
import { CIFAR10_MEAN, CIFAR10_STD, Normalized } from "../../src/nn/normalize.ts";
import { ResNet110 } from "../../src/nn/resnet.ts";
import { smoothAdvDdn, smoothedNllGradient } from "../../src/train/attacks.ts";
import { consistencyLossFromLogits } from "../../src/train/consistency_loss.ts";
import { readLossValues } from "../../src/train/loss_values.ts";
import { noisyCopies } from "../../src/train/macer_loss.ts";
import { smoothAdvLoss } from "../../src/train/smoothadv_loss.ts";
import { smoothMixLoss } from "../../src/train/smoothmix_loss.ts";
import { Var as V } from "../../compute/autograd.ts";
import { formulaInput, type GradStat, loadFormulaWeights, modelFixture } from "../nn/_formula.ts";

const fx = modelFixture("baselines");
const { n, m, sigma } = fx as { n: number; m: number; sigma: number };
const labels = Int32Array.from(fx.labels as number[]);

interface Summary {
  sum: number;
  abs_sum: number;
  norms: number[];
  every37: number[];
}

function model(): LeNet {
  const net = new LeNet(0);
  loadFormulaWeights(net);
  for (const [name, factor] of Object.entries(fx.weight_scale as Record<string, number>)) {
    const e = net.stateEntries().find((s) => s.name === name)!;
    const w = e.read() as Float32Array;
    e.write(w.map((v) => Math.fround(v * factor)));
  }
  return net.train();
}

const images = () => Tensor.fromF32(formulaInput(n * 784), [n, 1, 28, 28]);
const noise = () => ops.affine(Tensor.fromF32(fx.noise as number[], [n * m, 1, 28, 28]), sigma);

function close(what: string, got: number, want: number, tol: number, scale = Math.abs(want)) {
  assert.ok(
    Math.abs(got - want) <= tol * Math.max(scale, 1e-12),
    `${what}: ${got} vs ${want}`,
  );
}

function checkSummary(what: string, t: Float32Array, want: Summary, tol: number) {
  const images = want.norms.length;
  let sum = 0, abs = 0;
  for (const v of t) {
    sum += v;
    abs += Math.abs(v);
  }
  close(`${what} sum |.|`, abs, want.abs_sum, tol);
  close(`${what} sum`, sum, want.sum, tol, want.abs_sum);
  const d = t.length / images;
  want.norms.forEach((w, i) => {
    let s = 0;
    for (let j = i * d; j < (i + 1) * d; j++) s += t[j] * t[j];
    close(`${what} norm of image ${i}`, Math.sqrt(s), w, tol);
  });
  const peak = Math.max(...want.every37.map(Math.abs));
  want.every37.forEach((w, i) => close(`${what}[${37 * i}]`, t[37 * i], w, tol, peak));
}

function gradients(net: LeNet, loss: Var): Map<string, Float32Array> {
  backward(loss);
  const out = new Map(net.namedParameters().map(([name, p]) => [name, p.grad!.toF32()]));
  net.zeroGrad();
  return out;
}

function checkGrads(got: Map<string, Float32Array>, want: GradStat[], tol: number) {
  for (const e of want) {
    const g = got.get(e.name);
    assert.ok(g, `missing gradient for ${e.name}`);
    let sum = 0, abs = 0;
    for (const v of g) {
      sum += v;
      abs += Math.abs(v);
    }
    close(`${e.name}: sum |grad|`, abs, e.abs_sum, tol);
    close(`${e.name}: sum grad`, sum, e.sum, tol, e.abs_sum);
    const scale = Math.max(...(e.first ?? []).map(Math.abs), e.abs_sum / g.length);
    (e.first ?? []).forEach((v, i) => close(`${e.name}[${i}]`, g[i], v, tol, scale));
  }
}

Deno.test("consistency loss and gradients match PyTorch", () => {
  const c = fx.consistency;
  const net = model();
  tidy(() => {
    const eps = Tensor.fromF32(fx.noise as number[], [n * m, 1, 28, 28]);
    const logits = net.forward(V.constant(noisyCopies(images(), m, sigma, { eps })));
    const r = consistencyLossFromLogits(logits, labels, { m, lbd: c.lbd, eta: c.eta });
    const v = readLossValues(r.loss, r.parts);
    close("loss", v.loss, c.loss, 1e-5);
    close("classification", v.classification, c.classification, 1e-5);
    close("consistency term", v.robustness, c.robustness, 1e-5);
    checkGrads(gradients(net, r.loss), c.grads, 1e-4);
  });
});

for (const c of fx.smoothadv) {
  Deno.test(`SmoothAdv PGD steps, loss and gradients match PyTorch (train_multi_noise ${c.train_multi_noise}, no_grad_attack ${c.no_grad_attack})`, () => {
    const net = model();
    tidy(() => {
      const deltas: Float32Array[] = [];
      const r = smoothAdvLoss(net, images(), labels, noise(), {
        m,
        steps: c.steps,
        epsilon: c.epsilon,
        multiNoise: c.train_multi_noise,
        noGrad: c.no_grad_attack,
        onAttackStep: (_, d) => deltas.push(d.toF32()),
      });
      assert.equal(deltas.length, c.steps);
      deltas.forEach((d, i) => checkSummary(`delta after step ${i + 1}`, d, c.deltas[i], 1e-4));
      assert.ok(net.training, "the model is back in training mode after the attack");
      const v = readLossValues(r.loss, r.parts);
      close("loss", v.loss, c.loss, 1e-5);
      checkGrads(gradients(net, r.loss), c.grads, 1e-4);
    });
  });
}

Deno.test("SmoothMix attack, loss and gradients match PyTorch", () => {
  const c = fx.smoothmix;
  const net = model();
  tidy(() => {
    const points: Float32Array[] = [];
    const x = images();
    const r = smoothMixLoss(net, x, labels, noise(), Float32Array.from(c.lam), {
      m,
      steps: c.steps,
      alpha: c.alpha,
      mixStep: c.mix_step,
      maxnorm: c.maxnorm,
      maxnormS: c.maxnorm_s,
      eta: c.eta,
      warmupFactor: c.warmup_factor,
      onAttackStep: (_, a) => points.push(ops.sub(a, x).toF32()),
    });
    assert.equal(points.length, c.steps);
    points.forEach((p, i) =>
      checkSummary(`perturbation after step ${i + 1}`, p, c.points[i], 1e-4)
    );
    const v = readLossValues(r.loss, r.parts);
    close("loss", v.loss, c.loss, 1e-5);
    close("classification", v.classification, c.classification, 1e-5);
    close("mixup term", v.robustness, c.robustness, 1e-4);
    checkGrads(gradients(net, r.loss), c.grads, 1e-4);
  });
});

Deno.test("the attacks' input gradient through normalisation and an eval-mode ResNet matches PyTorch", () => {
  const c = fx.resnet20_eval_input_grad;
  const net = new Normalized(new ResNet110(0, 10, 3), CIFAR10_MEAN, CIFAR10_STD);
  loadFormulaWeights(net);
  tidy(() => {
    const size = c.n * 3 * 32 * 32;
    const x = Tensor.fromF32(formulaInput(size), [c.n, 3, 32, 32]);
    const eps = new Float32Array(size * c.m);
    for (let i = 0; i < eps.length; i++) eps[i] = Math.fround(Math.sin(0.013 * i * i + 0.5) * 0.8);
    const noise = ops.affine(Tensor.fromF32(eps, [c.n * c.m, 3, 32, 32]), sigma);
    net.eval();
    const g = smoothedNllGradient(net, x, Int32Array.from(c.labels), noise, c.m, "mean");
    checkSummary("input gradient", g.toF32(), c.grad, 1e-4);
    for (const p of net.parameters()) assert.equal(p.grad, null, "no parameter keeps a gradient");
  });
});

Deno.test("SmoothAdv DDN steps, the perturbation kept, loss and gradients match PyTorch", () => {
  const c = fx.smoothadv_ddn;
  const net = model();
  tidy(() => {
    const x = images();
    const deltas: Float32Array[] = [];
    const adv = smoothAdvDdn(net, x, labels, noise(), {
      m,
      steps: c.steps,
      maxNorm: c.epsilon,
      gamma: c.gamma,
      onStep: (_, d) => deltas.push(d.toF32()),
    });
    deltas.forEach((d, i) => checkSummary(`delta after step ${i + 1}`, d, c.deltas[i], 1e-4));
    checkSummary("the perturbation kept", ops.sub(adv, x).toF32(), c.adv, 1e-4);
    const r = smoothAdvLoss(net, x, labels, noise(), {
      m,
      steps: c.steps,
      epsilon: c.epsilon,
      multiNoise: true,
      attack: "DDN",
      gammaDdn: c.gamma,
    });
    close("loss", readLossValues(r.loss, r.parts).loss, c.loss, 1e-5);
    checkGrads(gradients(net, r.loss), c.grads, 1e-4);
  });
});
