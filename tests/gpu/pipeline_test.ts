/**
 * A pipeline file with `"device": "gpu"` runs end to end on the gpu, records
 * the adapter in its manifest, and certifies what the cpu run certifies.
 */
import assert from "node:assert/strict";
import { readRunSummary } from "../../src/report/summary.ts";
import {
  assertOk,
  pipelineCli,
  tempDir,
  tinyPipeline,
  writeJsonFile,
} from "../pipeline/_pipeline.ts";
import { ignoreGpu } from "./_gpu.ts";

Deno.test({
  name: 'a pipeline with "device": "gpu" runs on the gpu and certifies as the cpu run does',
  ignore: ignoreGpu,
  fn: async () => {
    await using tmp = await tempDir();
    const runs: Record<string, string> = {};
    for (const device of ["cpu", "gpu"]) {
      const file = await writeJsonFile(`${tmp.path}/${device}.json`, {
        ...tinyPipeline({ epochs: 1, numTrain: 64, numImg: 3 }),
        device,
      });
      runs[device] = `${tmp.path}/run-${device}`;
      assertOk(await pipelineCli([file, "--out", runs[device]], tmp.path), device);
    }
    const manifest = JSON.parse(await Deno.readTextFile(`${runs.gpu}/manifest.json`));
    assert.equal(manifest.device.asked, "gpu");
    assert.equal(manifest.device.used, "gpu");
    assert.ok(typeof manifest.device.adapter === "string" && manifest.device.adapter.length > 0);
    const [cpu, gpu] = await Promise.all([readRunSummary(runs.cpu), readRunSummary(runs.gpu)]);
    const certified = (s: typeof cpu) => {
      const c = s.stages.find((x) => x.kind === "certify");
      assert.ok(c && c.kind === "certify");
      return c.modes.hard!.counts;
    };
    // One epoch on 64 digits from the same weights and noise: the same predictions.
    assert.deepEqual(certified(gpu).total, certified(cpu).total);
  },
});
