/**
 * Sharded runs through `cli.ts pipeline --shard I/N` and `cli.ts merge`: the
 * train stages run once (`--train-only`), copied into three run directories;
 * one certifies and predicts in one process, one as 1 shard, one as 4 shards.
 * The merged files must equal the single-process run's (measured times aside,
 * see _shards.ts); a part must be the same bytes when its shard runs again;
 * a missing or duplicated part must be named, and nothing merged.
 */
import assert from "node:assert/strict";
import {
  assertOk,
  exists,
  type Json,
  pipelineCli,
  sameBytes,
  tempDir,
  tinyPipeline,
  writeJsonFile,
} from "./_pipeline.ts";
import { assertSameRun } from "./_shards.ts";
import { parseShard, shardSlice } from "../../src/pipeline/shard.ts";
import { InputError } from "../../src/errors.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

async function merge(dir: string, cwd: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", CLI, "merge", dir],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

async function copyDir(from: string, to: string): Promise<void> {
  const out = await new Deno.Command("cp", { args: ["-a", from, to] }).output();
  assert.ok(out.success, `cp -a ${from} ${to}`);
}

/** The tiny pipeline with 7 images to certify (4 shards of 1, 2, 2, 2) and 5 to predict. */
function pipeline(): Json {
  const p = tinyPipeline({ name: "shards", epochs: 1, numTrain: 64, numImg: 7 });
  (p.stages as Json[])[2].num_img = 5;
  return p;
}

Deno.test("shards: contiguous stretches, every image once, the first ones one shorter", () => {
  const items = Array.from({ length: 7 }, (_, i) => 10 + i * 3);
  const slices = [0, 1, 2, 3].map((index) => shardSlice(items, { index, count: 4 }));
  assert.deepEqual(slices.map((s) => s.length), [1, 2, 2, 2]);
  assert.deepEqual(slices.flat(), items);
  assert.deepEqual(shardSlice(items, { index: 0, count: 1 }), items);
  assert.deepEqual(shardSlice([1, 2], { index: 2, count: 3 }), [2]);
  assert.deepEqual(shardSlice([1, 2], { index: 0, count: 3 }), []);
  assert.deepEqual(parseShard("3/4"), { index: 3, count: 4 });
  for (const bad of ["4/4", "1/0", "-1/4", "a/b", "1"]) {
    assert.throws(() => parseShard(bad), InputError, bad);
  }
});

Deno.test("1 shard and 4 shards merge into the files of a single-process run; a missing or duplicated part is named", async () => {
  await using tmp = await tempDir();
  const cwd = tmp.path;
  const file = await writeJsonFile(`${cwd}/shards.json`, pipeline());
  // One training, shared by the runs; each runs in its own folder as --out run (the report
  // names the run directory as given).
  await Deno.mkdir(`${cwd}/trained`);
  assertOk(
    await pipelineCli([file, "--out", "run", "--train-only"], `${cwd}/trained`),
    "train only",
  );
  assert.ok(!(await exists(`${cwd}/trained/run/summary.json`)), "--train-only wrote a summary");
  await Deno.mkdir(`${cwd}/fresh`);
  for (const d of ["single", "one", "four", "dup", "eight"]) {
    await Deno.mkdir(`${cwd}/${d}`);
    await copyDir(`${cwd}/trained/run`, `${cwd}/${d}/run`);
  }
  assertOk(await pipelineCli([file, "--out", "run"], `${cwd}/single`), "single-process run");

  // One shard: its part is the whole run, and the shard merges at once.
  const one = await pipelineCli([file, "--out", "run", "--shard", "0/1"], `${cwd}/one`);
  assertOk(one, "shard 0/1");
  assert.match(one.stdout, /every part is there: merging/);

  // Four shards, one of them missing: each shard leaves its part, nothing is merged.
  for (const i of [0, 1, 3]) {
    assertOk(
      await pipelineCli([file, "--out", "run", "--shard", `${i}/4`], `${cwd}/four`),
      `${i}/4`,
    );
  }
  assert.ok(!(await exists(`${cwd}/four/run/summary.json`)), "merged with a part missing");
  const missing = await merge("run", `${cwd}/four`);
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(
    missing.stderr,
    /stage certify: part 2-of-4 is missing .*2-of-4\.part\.json; 2 images, 3\.\.4/,
  );
  assert.match(missing.stderr, /stage predict: part 2-of-4 is missing/);
  assert.doesNotMatch(missing.stderr, /\n\s+at /, "a stack trace");
  assert.ok(!(await exists(`${cwd}/four/run/summary.json`)), "merged with a part missing");

  // A shard without the training is refused, naming the stage and what to do.
  const untrained = await pipelineCli([file, "--out", "run", "--shard", "0/4"], `${cwd}/fresh`);
  assert.equal(untrained.code, 1);
  assert.match(untrained.stderr, /train stage train has not finished.*--train-only/);

  // The last part: the shard run merges.
  const last = await pipelineCli([file, "--out", "run", "--shard", "2/4"], `${cwd}/four`);
  assertOk(last, "shard 2/4");
  assert.match(last.stdout, /every part is there: merging/);

  const single = await assertSameRun(`${cwd}/single/run`, `${cwd}/four/run`);
  await assertSameRun(`${cwd}/single/run`, `${cwd}/one/run`);
  // summary.json, done.json, the report, pipeline.json, the checkpoint: byte for byte.
  assert.ok(single.whole >= 7, `only ${single.whole} files compared whole`);
  assert.ok(await sameBytes(`${cwd}/single/run/summary.json`, `${cwd}/four/run/summary.json`));
  assert.ok(await sameBytes(`${cwd}/single/run/report.html`, `${cwd}/four/run/report.html`));
  const manifest = JSON.parse(await Deno.readTextFile(`${cwd}/four/run/manifest.json`));
  assert.equal(manifest.stages.certify.shards, 4);

  // More shards than images: the empty ones leave empty parts, and the set still merges.
  for (let i = 0; i < 8; i++) {
    assertOk(
      await pipelineCli([file, "--out", "run", "--shard", `${i}/8`], `${cwd}/eight`),
      `${i}/8`,
    );
  }
  const empty = JSON.parse(
    await Deno.readTextFile(`${cwd}/eight/run/stages/certify/parts/0-of-8.part.json`),
  );
  assert.deepEqual(empty.images, []);
  await assertSameRun(`${cwd}/single/run`, `${cwd}/eight/run`);

  // A shard run again: kept as it is; run again from nothing: the same bytes.
  const part = `${cwd}/four/run/stages/certify/parts/1-of-4.part.json`;
  const before = await Deno.readFile(part);
  const kept = await pipelineCli([file, "--out", "run", "--shard", "1/4"], `${cwd}/four`);
  assertOk(kept, "shard 1/4 again");
  await Deno.remove(`${cwd}/four/run/stages/certify/done.json`);
  await Deno.remove(part);
  await Deno.remove(`${cwd}/four/run/stages/certify/parts/1-of-4`, { recursive: true });
  assertOk(
    await pipelineCli([file, "--out", "run", "--shard", "1/4"], `${cwd}/four`),
    "1/4 redone",
  );
  assert.deepEqual(await Deno.readFile(part), before, "a shard run again wrote another part");
  await assertSameRun(`${cwd}/single/run`, `${cwd}/four/run`);

  // A duplicated part: the 4 parts and a part of 2 shards overlap; the merge names both.
  for (const i of [0, 1, 2, 3]) {
    assertOk(
      await pipelineCli([file, "--out", "run", "--shard", `${i}/4`], `${cwd}/dup`),
      `dup ${i}`,
    );
  }
  await Deno.remove(`${cwd}/dup/run/stages/certify/done.json`);
  assertOk(await pipelineCli([file, "--out", "run", "--shard", "1/2"], `${cwd}/dup`), "dup 1/2");
  const dup = await merge("run", `${cwd}/dup`);
  assert.equal(dup.code, 1, dup.stderr);
  assert.match(
    dup.stderr,
    /stage certify: image \d+ is in two parts: \S*-of-\d\.part\.json and \S*-of-\d\.part\.json/,
  );
});

Deno.test("--combination K runs the K-th combination of a matrix alone; --shard needs --out", async () => {
  await using tmp = await tempDir();
  const p = { ...tinyPipeline({ name: "grid" }), matrix: { sigma: [0.25, 0.5, 1] } };
  const file = await writeJsonFile(`${tmp.path}/grid.json`, p);
  const r = await pipelineCli([file, "--out", "run", "--dry-run", "--combination", "1"], tmp.path);
  assertOk(r, "--combination 1");
  const runs = r.stdout.split(/^(?=\{)/m).map((t) => JSON.parse(t));
  assert.equal(runs.length, 1);
  assert.equal(runs[0].matrix, "sigma=0.5");
  assert.equal(runs[0].dir, "run/sigma-0.5");
  for (
    const [args, message] of [
      [["--combination", "3"], /--combination 3: the pipeline has 3 \(0\.\.2\)/],
      [["--combination", "x"], /--combination x: expected an integer >= 0/],
      [["--shard", "4/4"], /--shard 4\/4: expected i\/N with 0 <= i < N/],
      [["--shard", "0/4", "--train-only"], /exclude each other/],
    ] as const
  ) {
    const bad = await pipelineCli([file, "--out", "run", "--dry-run", ...args], tmp.path);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, message);
  }
  const noOut = await pipelineCli([file, "--shard", "0/4"], tmp.path);
  assert.equal(noOut.code, 2);
  assert.match(noOut.stderr, /--shard needs --out/);
});
