/**
 * The baselines' training steps on the gpu device give the cpu's: Consistency,
 * SmoothAdv (PGD on the smoothed classifier, evaluation mode) and SmoothMix, on a
 * small LeNet batch (Mesa's software adapter is slow).
 */
import assert from "node:assert/strict";
import { LeNet } from "../../src/nn/lenet.ts";
import { Trainer } from "../../src/train/trainer.ts";
import { ignoreGpu, maxRelDiff, on } from "./_gpu.ts";
import { batchOf, macer, state, updateDiffs } from "../_training_step.ts";

const baseline = {
  numNoiseVec: 2,
  eta: 1,
  epsilon: 0.5,
  numSteps: 2,
  warmup: 1,
  alpha: 0.5,
  mixStep: 1,
  trainMultiNoise: true,
};

const cases = [
  ["consistency", {}],
  ["smoothadv", {}],
  ["smoothadv", { attack: "DDN" }],
  ["smoothmix", {}],
] as const;

for (const [method, extra] of cases) {
  Deno.test({
    name: `a LeNet ${method} ${
      JSON.stringify(extra)
    } step on the gpu gives the cpu's losses and weights`,
    ignore: ignoreGpu,
    fn: async () => {
      const step = () => {
        const trainer = new Trainer(new LeNet(0), {
          ...macer,
          method,
          baseline: { ...baseline, ...extra },
        });
        const result = trainer.step(batchOf(4, 784), [1, 28, 28]);
        const weights = state(trainer.model);
        const offset = trainer.noiseOffset;
        trainer.dispose();
        return { result, weights, offset };
      };
      const cpu = await on("cpu", step);
      const gpu = await on("gpu", step);
      assert.equal(gpu.offset, cpu.offset, "noise drawn");
      const [c, g] = [cpu.result, gpu.result];
      assert.ok(
        maxRelDiff([c.classification, c.robustness], [g.classification, g.robustness]) < 1e-4,
        `${JSON.stringify(c)} vs ${JSON.stringify(g)}`,
      );
      const before = state(new LeNet(0));
      for (const [name, d] of updateDiffs(before, cpu.weights, gpu.weights)) {
        assert.ok(d < 1e-3, `${name}: updates differ by ${d} of the largest`);
      }
    },
  });
}
