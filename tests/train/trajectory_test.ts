/**
 * Nine MACER + SGD steps over three epochs against PyTorch
 * (tests/fixtures/models/trajectory.json, written by
 * scripts/fixtures/make_trajectory_fixture.py): what carries from step to step
 * (momentum buffers, weight decay, the noise stream's position, the short last
 * batch of each epoch, the epoch boundary) is compared, not only one gradient.
 */
import assert from "node:assert/strict";
import { BatchLoader } from "../../src/data/loader.ts";
import type { ImageDataset } from "../../src/data/types.ts";
import { LeNet } from "../../src/nn/lenet.ts";
import { type StepResult, Trainer } from "../../src/train/trainer.ts";
import { loadFormulaWeights, modelFixture } from "../nn/_formula.ts";

const fx = modelFixture("trajectory");

/**
 * Tolerances. Our engine computes in float32, so it can only be held to
 * about the distance between PyTorch's float32 and float64 runs of the same
 * trajectory (the fixture's "f32" and "f64"). We allow SLACK times that
 * distance: our kernels round in other orders than PyTorch's, so their error
 * is of the same size but not the same value.
 * Losses: SLACK times the largest float32 deviation over the nine steps, per
 * figure (fixture "f32_dev", each relative to the scale named in
 * "f32_dev_scales").
 * Parameter figures: SLACK times PyTorch's float32 deviation of that very
 * figure of that tensor, but at least FLOOR of its scale (about 8 float32
 * ulps), so that a figure float32 happened to get exactly right does not ask
 * for more than float32 can give.
 */
const SLACK = 10;
const FLOOR = 1e-6;

function dataset(): ImageDataset {
  const images = new Uint8Array(fx.count * 784);
  for (let b = 0; b < fx.count; b++) {
    const a = 0.7 * b + 0.2;
    for (let p = 0; p < 784; p++) {
      const r = Math.floor(p / 28), c = p % 28;
      images[b * 784 + p] = Math.round(
        255 * (0.5 + 0.5 * Math.sin((0.3 + 0.02 * b) * (r * Math.cos(a) + c * Math.sin(a)) + b)),
      );
    }
  }
  return {
    name: "mnist",
    split: "train",
    count: fx.count,
    channels: 1,
    height: 28,
    width: 28,
    classes: 10,
    images,
    labels: Uint8Array.from(fx.labels),
  };
}

interface ParamStats {
  name: string;
  numel: number;
  init_norm: number;
  first: number[];
  delta_norm: number;
  delta_sum: number;
  delta_dot_init: number;
  momentum_norm: number;
  momentum_sum: number;
}

/** The fixture's per-parameter figures, from float32 weights and buffers. */
function stats(name: string, w0: Float32Array, w: Float32Array, m: Float32Array): ParamStats {
  let initSq = 0, dSq = 0, dSum = 0, dDot = 0, mSq = 0, mSum = 0;
  for (let i = 0; i < w.length; i++) {
    const d = w[i] - w0[i];
    initSq += w0[i] * w0[i];
    dSq += d * d;
    dSum += d;
    dDot += d * w0[i];
    mSq += m[i] * m[i];
    mSum += m[i];
  }
  return {
    name,
    numel: w.length,
    init_norm: Math.sqrt(initSq),
    first: [...w.subarray(0, 6)],
    delta_norm: Math.sqrt(dSq),
    delta_sum: dSum,
    delta_dot_init: dDot,
    momentum_norm: Math.sqrt(mSq),
    momentum_sum: mSum,
  };
}

Deno.test("Trainer follows PyTorch's MACER + SGD trajectory for 3 epochs of 16, 16, 8 images", () => {
  const ds = dataset();
  let pixels = 0, weighted = 0;
  ds.images.forEach((v, i) => {
    pixels += v;
    weighted += v * (i % 997);
  });
  assert.equal(pixels, fx.pixel_sum, "dataset formula (pixel sum)");
  assert.equal(weighted, fx.pixel_weighted_sum, "dataset formula (weighted pixel sum)");

  const model = new LeNet(0);
  loadFormulaWeights(model);
  const init = new Map(model.namedParameters().map(([n, p]) => [n, p.value.toF32()]));
  const trainer = new Trainer(model, {
    method: "macer",
    sigma: fx.sigma,
    gaussNum: fx.k,
    lbd: fx.lbd,
    gamma: fx.gamma,
    beta: fx.beta,
    lr: fx.lr,
    momentum: fx.momentum,
    weightDecay: fx.weight_decay,
    noiseSeed: fx.noise_seed,
    dataSeed: 0,
  });
  const loader = new BatchLoader(ds, {
    batchSize: fx.batch_size,
    shuffle: true,
    augment: false,
    seed: 0,
    orders: (epoch) => Int32Array.from(fx.orders[epoch - 1]),
  });

  // trainEpoch() runs the steps; each step's own result is recorded on the way.
  const steps: (StepResult & { offset: number; epoch: number })[] = [];
  const step = trainer.step.bind(trainer);
  trainer.step = (batch, shape) => {
    const offset = trainer.noiseOffset;
    const r = step(batch, shape);
    steps.push({ ...r, offset, epoch: trainer.epoch + 1 });
    return r;
  };
  for (let e = 0; e < fx.epochs; e++) {
    const r = trainer.trainEpoch(loader, [1, 28, 28]);
    assert.equal(r.lr, fx.lr);
  }

  const dev = fx.f32_dev;
  const ref64 = fx.f64.steps;
  assert.equal(steps.length, ref64.length, "steps");
  ref64.forEach((ref: Record<string, number>, i: number) => {
    const s = steps[i];
    const at = `step ${i + 1} (epoch ${ref.epoch}, ${ref.n} images)`;
    assert.equal(s.epoch, ref.epoch, `${at}: epoch`);
    assert.equal(s.n, ref.n, `${at}: batch size`);
    assert.equal(s.offset, ref.noise_offset, `${at}: noise offset`);
    assert.equal(s.kept, ref.kept, `${at}: kept images`);
    const cl = Math.abs(s.classification - ref.classification) / Math.abs(ref.classification);
    assert.ok(
      cl <= SLACK * dev.classification,
      `${at}: classification ${s.classification} vs ${ref.classification}`,
    );
    const rl = Math.abs(s.robustness - ref.robustness) /
      (fx.sigma / 2 * fx.gamma * Math.max(ref.kept, 1));
    assert.ok(
      rl <= SLACK * dev.robustness,
      `${at}: robustness ${s.robustness} vs ${ref.robustness}`,
    );
    const loss = (s.classification + fx.lbd * s.robustness) / s.n;
    assert.ok(
      Math.abs(loss - ref.loss) <= SLACK * dev.loss * Math.abs(ref.loss),
      `${at}: loss ${loss} vs ${ref.loss}`,
    );
  });
  assert.equal(
    trainer.noiseOffset,
    ref64.reduce((a: number, s: { n: number }) => a + s.n, 0) * 784 * fx.k,
  );

  const buffers = trainer.optimizer.buffers!;
  const ours = model.namedParameters().map(([name, p], i) =>
    stats(name, init.get(name)!, p.value.toF32(), buffers[i].toF32())
  );
  const scales: Record<string, (p: ParamStats) => number> = {
    delta_norm: (p) => p.delta_norm,
    delta_sum: (p) => Math.max(Math.abs(p.delta_sum), p.delta_norm),
    delta_dot_init: (p) => p.delta_norm * p.init_norm,
    first: (p) => p.delta_norm / Math.sqrt(p.numel),
    momentum_norm: (p) => p.momentum_norm,
    momentum_sum: (p) => Math.max(Math.abs(p.momentum_sum), p.momentum_norm),
  };
  fx.f64.params.forEach((ref: ParamStats, t: number) => {
    const f32: ParamStats = fx.f32.params[t];
    const got = ours.find((p) => p.name === ref.name);
    assert.ok(got, `missing parameter ${ref.name}`);
    assert.equal(got.numel, ref.numel);
    assert.ok(Math.abs(got.init_norm - ref.init_norm) <= 1e-6 * ref.init_norm, "initial weights");
    for (const [key, scale] of Object.entries(scales)) {
      const want = [ref[key as keyof ParamStats]].flat() as number[];
      const have = [got[key as keyof ParamStats]].flat() as number[];
      const torch32 = [f32[key as keyof ParamStats]].flat() as number[];
      want.forEach((v, i) => {
        const tol = SLACK * Math.max(Math.abs(torch32[i] - v), FLOOR * scale(ref));
        const what = want.length > 1 ? `${ref.name} ${key}[${i}]` : `${ref.name} ${key}`;
        assert.ok(Math.abs(have[i] - v) <= tol, `${what}: ${have[i]} vs ${v} (tolerance ${tol})`);
      });
    }
  });
  trainer.dispose();
});
