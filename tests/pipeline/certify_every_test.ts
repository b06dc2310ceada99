import assert from "node:assert/strict";
import {
  assertOk,
  type Json,
  pipelineCli,
  tempDir,
  tinyPipeline,
  writeJsonFile,
} from "./_pipeline.ts";

Deno.test("certify_every certifies during training with the model's certify stage settings, hard mode", async () => {
  await using tmp = await tempDir();
  const doc = tinyPipeline({ epochs: 2 });
  const stages = doc.stages as Json[];
  stages[0].certify_every = 2;
  const file = await writeJsonFile(`${tmp.path}/p.json`, doc);
  const out = `${tmp.path}/run`;
  assertOk(await pipelineCli([file, "--out", out]), "run");
  const lines = (await Deno.readTextFile(`${out}/stages/train/epochs.jsonl`)).trim().split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(lines.length, 2);
  assert.equal(lines[0].acr, undefined, "epoch 1 is not a multiple of 2");
  const during = JSON.parse(await Deno.readTextFile(`${out}/stages/train/certify/2.summary.json`));
  assert.deepEqual(Object.keys(during.modes), ["hard"]);
  assert.equal(lines[1].acr, during.modes.hard.acr);
  // The settings are those of the certify stage of this model (n 200, 6 images, n0 20).
  assert.equal(during.params.n, 200);
  assert.equal(during.params.n0, 20);
  assert.equal(during.params.num_img, 6);
  // After the last epoch the model is the one the certify stage certifies: the same hard results.
  const after = JSON.parse(await Deno.readTextFile(`${out}/stages/certify/certify.summary.json`));
  assert.deepEqual(during.modes.hard, after.modes.hard);
});
