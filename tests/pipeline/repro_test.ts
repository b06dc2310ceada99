/**
 * Reproducibility of a pipeline run: the same tiny pipeline and seed, run
 * again and on 1 and 2 threads, gives a byte-identical summary.json and final
 * checkpoint; a `summary_sha256` expectation holding the first run's digest
 * holds on the reruns.
 */
import assert from "node:assert/strict";
import {
  assertOk,
  finalCheckpoint,
  pipelineCli,
  sameBytes,
  sha256,
  tempDir,
  tinyPipeline,
  writeJsonFile,
} from "./_pipeline.ts";

Deno.test("the same pipeline gives byte-identical summary.json and checkpoints on reruns, on 1 and 2 threads", async () => {
  await using tmp = await tempDir();
  const file = await writeJsonFile(`${tmp.path}/tiny.json`, tinyPipeline());
  const one = `${tmp.path}/threads1`;
  assertOk(await pipelineCli([file, "--out", one, "--set", "threads=1"], tmp.path), "1 thread");
  const digest = await sha256(`${one}/summary.json`);
  const expectDigest = `expect=[{"summary_sha256": "${digest}"}]`;

  // On 2 threads, with the first run's digest as an expectation: it holds.
  const two = `${tmp.path}/threads2`;
  const r2 = await pipelineCli(
    [file, "--out", two, "--set", "threads=2", "--set", expectDigest],
    tmp.path,
  );
  assertOk(r2, "2 threads, digest expected");
  assert.equal(await sha256(`${two}/summary.json`), digest);
  assert.ok(await sameBytes(await finalCheckpoint(one), await finalCheckpoint(two)));
  const manifest = (dir: string) =>
    Deno.readTextFile(`${dir}/manifest.json`).then((t) => JSON.parse(t));
  assert.equal((await manifest(one)).library.threads, 1);
  assert.equal((await manifest(two)).library.threads, 2);

  // Run again as written (default threads), the digest expected too.
  const again = `${tmp.path}/again`;
  assertOk(await pipelineCli([file, "--out", again, "--set", expectDigest], tmp.path), "rerun");
  assert.equal(await sha256(`${again}/summary.json`), digest);
  assert.ok(await sameBytes(await finalCheckpoint(one), await finalCheckpoint(again)));
  // The certification's radii (the .mat file) match too, past the header's creation time.
  const mat = async (dir: string) =>
    (await Deno.readFile(`${dir}/stages/certify/certify.mat`)).subarray(116);
  assert.deepEqual(await mat(again), await mat(one));
  // Another seed gives another summary: the digest expectation would catch it.
  const other = `${tmp.path}/other`;
  const r3 = await pipelineCli(
    [file, "--out", other, "--set", "seed=6", "--set", expectDigest],
    tmp.path,
  );
  assert.equal(r3.code, 1, r3.stderr);
  assert.match(
    r3.stderr,
    new RegExp(
      `^error: expectation not met: expect\\[0\\]: summary\\.json has SHA-256 [0-9a-f]{64}, expected ${digest}$`,
      "m",
    ),
  );
});
