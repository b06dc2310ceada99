/**
 * Pipeline runs through `cli.ts pipeline` as a process: a tiny pipeline
 * (train, certify, predict, report) leaves the run directory's files; a rerun
 * keeps every stage; `expect` gates the exit code; a run directory of another
 * pipeline is refused without --force and taken over with it.
 */
import assert from "node:assert/strict";
import { readRunSummary } from "../../src/report/summary.ts";
import type { CertifyStageSummary, RunSummary } from "../../src/report/summary.ts";
import {
  assertOk,
  finalCheckpoint,
  hasStackTrace,
  type Json,
  pipelineCli,
  sameBytes,
  sha256,
  tempDir,
  tinyPipeline,
  tree,
  writeJsonFile,
} from "./_pipeline.ts";

Deno.test("a tiny pipeline runs end to end into its run directory, and a rerun keeps every stage", async () => {
  await using tmp = await tempDir();
  const file = await writeJsonFile(`${tmp.path}/tiny.json`, tinyPipeline());
  const run = `${tmp.path}/run`;
  const r = await pipelineCli([file, "--out", run], tmp.path);
  assertOk(r, "run");
  assert.match(r.stdout, new RegExp(`^starting tiny in ${run} on cpu$`, "m"));
  assert.match(r.stdout, new RegExp(`^run directory: ${run}$`, "m"));
  // (A certify stage's journal of finished images, where one is kept, is not listed here.)
  assert.deepEqual((await tree(run)).filter((f) => !f.endsWith(".journal.jsonl")), [
    "log.txt",
    "manifest.json",
    "pipeline.json",
    "report.html",
    "stages",
    "stages/certify",
    "stages/certify/certify.hard.tsv",
    "stages/certify/certify.mat",
    "stages/certify/certify.soft.tsv",
    "stages/certify/certify.summary.json",
    "stages/certify/done.json",
    "stages/predict",
    "stages/predict/done.json",
    "stages/predict/predict.tsv",
    "stages/train",
    "stages/train/ckpt",
    "stages/train/ckpt/2.safetensors",
    "stages/train/done.json",
    "stages/train/epochs.jsonl",
    "summary.json",
  ]);

  // summary.json: the report's format, one entry per stage that computes.
  const summary = await readRunSummary(run);
  assert.equal(summary.format, "macer-pipeline-summary");
  assert.equal(summary.name, "tiny");
  assert.deepEqual(summary.stages.map((s) => [s.name, s.kind]), [
    ["train", "train"],
    ["certify", "certify"],
    ["predict", "predict"],
  ]);
  const [train, certify, predict] = summary.stages;
  assert.ok(train.kind === "train" && certify.kind === "certify" && predict.kind === "predict");
  assert.deepEqual(train.epochs.map((e) => [e.epoch, e.lr]), [[1, 0.05], [2, 0.05 * 0.1]]);
  assert.deepEqual(Object.keys(certify.modes).sort(), ["hard", "soft"]);
  assert.equal(certify.modes.hard!.counts.total, 6);
  assert.equal(certify.sigma, 0.25);
  assert.equal(predict.count, 4);
  // Each stage's done.json is its entry; timings stay out of summary.json (reruns give its bytes).
  const written = JSON.parse(await Deno.readTextFile(`${run}/summary.json`));
  for (const [i, name] of ["train", "certify", "predict"].entries()) {
    assert.deepEqual(
      JSON.parse(await Deno.readTextFile(`${run}/stages/${name}/done.json`)),
      written.stages[i],
    );
  }
  assert.doesNotMatch(await Deno.readTextFile(`${run}/summary.json`), /seconds|time/);
  // pipeline.json is the resolved pipeline, as --dry-run prints it.
  const dry = await pipelineCli([file, "--dry-run", "--out", run], tmp.path);
  assertOk(dry, "dry run");
  assert.deepEqual(
    JSON.parse(await Deno.readTextFile(`${run}/pipeline.json`)),
    JSON.parse(dry.stdout).pipeline,
  );
  const manifest = JSON.parse(await Deno.readTextFile(`${run}/manifest.json`));
  assert.equal(manifest.format, "macer-run-manifest");
  assert.equal(manifest.pipeline, "tiny");
  assert.equal(manifest.seed, 5);
  assert.deepEqual(manifest.device, { asked: "cpu", used: "cpu", adapter: null });
  assert.equal(manifest.deno, Deno.version.deno);
  assert.deepEqual(Object.keys(manifest.stages), ["train", "certify", "predict"]);
  assert.equal(manifest.stages.train.epoch_seconds.length, 2);
  assert.ok(Date.parse(manifest.finished) >= Date.parse(manifest.started));
  const log = await Deno.readTextFile(`${run}/log.txt`);
  assert.match(log, /^train: epoch 2\/2 {2}lr /m);
  assert.match(log, /^certify: hard: ACR \d/m);
  assert.match(log, /^predict: accuracy \d/m);
  assert.match(log, new RegExp(`^report: ${run}/report.html$`, "m"));
  const html = await Deno.readTextFile(`${run}/report.html`);
  assert.match(html, /<svg[\s\S]*<\/svg>/);
  assert.match(html, /tiny/);

  // Running again into the directory keeps every finished stage.
  const summaryBytes = await Deno.readFile(`${run}/summary.json`);
  const ckpt = await sha256(`${run}/stages/train/ckpt/2.safetensors`);
  const again = await pipelineCli([file, "--out", run], tmp.path);
  assertOk(again, "rerun");
  assert.match(again.stdout, new RegExp(`^resuming tiny in ${run} on cpu$`, "m"));
  for (const name of ["train", "certify", "predict"]) {
    assert.match(again.stdout, new RegExp(`^${name}: finished earlier, kept$`, "m"));
  }
  assert.doesNotMatch(again.stdout, /epoch \d/);
  assert.deepEqual(await Deno.readFile(`${run}/summary.json`), summaryBytes);
  assert.equal(await sha256(`${run}/stages/train/ckpt/2.safetensors`), ckpt);
  assert.match(await Deno.readTextFile(`${run}/log.txt`), /^starting tiny[\s\S]*^resuming tiny/m);
  // The manifest keeps the kept stages' timings, and the report its seconds per epoch.
  const remanifest = JSON.parse(await Deno.readTextFile(`${run}/manifest.json`));
  assert.deepEqual(remanifest.stages, manifest.stages);
  assert.deepEqual(
    (await readRunSummary(run)).stages[0],
    summary.stages[0],
    "epoch seconds read back from the manifest",
  );
});

/** Expectations one run's certify stage meets, and ones it does not, from its summary. */
function expectationsOf(summary: RunSummary): { met: Json[]; unmet: Json[] } {
  const certify = summary.stages.find((s) => s.kind === "certify") as CertifyStageSummary;
  const hard = certify.modes.hard!;
  const soft = certify.modes.soft!;
  const at = (radius: number) =>
    hard.certifiedAccuracy.find((c) => c.radius === radius)!.count / hard.counts.total;
  return {
    met: [
      { acr_at_least: hard.acr },
      { stage: "certify", mode: "soft", acr_at_least: soft.acr },
      { radius: 0.25, accuracy: at(0.25) },
      { radius: 0, accuracy: at(0) + 0.05, tolerance: 0.1 },
      { stage: "certify", accuracy_at_least: hard.counts.correct / hard.counts.total },
      { stage: "predict", accuracy_at_least: 0 },
    ],
    unmet: [
      { stage: "certify", acr_at_least: hard.acr + 0.01 },
      { stage: "certify", radius: 0, accuracy: at(0) > 0.5 ? 0 : 1, tolerance: 0.1 },
      { stage: "predict", accuracy_at_least: 1 },
      { summary_sha256: "0".repeat(64) },
    ],
  };
}

Deno.test("expect: every condition met exits 0; any not met exits 1 naming each one", async () => {
  await using tmp = await tempDir();
  const file = await writeJsonFile(`${tmp.path}/tiny.json`, tinyPipeline());
  const first = await pipelineCli([file, "--out", `${tmp.path}/first`], tmp.path);
  assertOk(first, "first run");
  const { met, unmet } = expectationsOf(await readRunSummary(`${tmp.path}/first`));

  const ok = await pipelineCli(
    [file, "--out", `${tmp.path}/met`, "--set", `expect=${JSON.stringify(met)}`],
    tmp.path,
  );
  assertOk(ok, "expectations met");
  assert.doesNotMatch(ok.stderr, /expectation/);

  const bad = await pipelineCli(
    [file, "--out", `${tmp.path}/unmet`, "--set", `expect=${JSON.stringify([...met, ...unmet])}`],
    tmp.path,
  );
  assert.equal(bad.code, 1, bad.stderr);
  assert.ok(!hasStackTrace(bad.stderr), bad.stderr);
  const failed = bad.stderr.split("\n").filter((l) => l.startsWith("error: expectation not met: "))
    .map((l) => l.slice("error: expectation not met: ".length));
  const n = met.length;
  assert.deepEqual(failed.map((l) => l.split(":")[0]), [0, 1, 2, 3].map((i) => `expect[${n + i}]`));
  assert.match(failed[0], /^expect\[6\]: certify hard ACR [\d.]+ < [\d.]+$/);
  assert.match(
    failed[1],
    /^expect\[7\]: certify hard certified accuracy at radius 0 is [\d.]+, expected [01] \+- 0\.1$/,
  );
  assert.match(failed[2], /^expect\[8\]: predict accuracy [\d.]+ < 1$/);
  assert.equal(
    failed[3],
    `expect[9]: summary.json has SHA-256 ${await sha256(
      `${tmp.path}/unmet/summary.json`,
    )}, expected ${"0".repeat(64)}`,
  );
  // The run itself is complete, and the failures are in its log too.
  assert.deepEqual(
    await Deno.readFile(`${tmp.path}/unmet/summary.json`),
    await Deno.readFile(`${tmp.path}/met/summary.json`),
  );
  const log = await Deno.readTextFile(`${tmp.path}/unmet/log.txt`);
  for (const f of failed) assert.ok(log.includes(`expectation failed: ${f}`), f);
});

Deno.test("a run directory of another pipeline is refused without --force and taken over with it", async () => {
  await using tmp = await tempDir();
  const file = await writeJsonFile(`${tmp.path}/tiny.json`, tinyPipeline({ numImg: 4 }));
  const run = `${tmp.path}/run`;
  assertOk(await pipelineCli([file, "--out", run], tmp.path), "first run");
  const before = new Map<string, string>();
  for (const f of await tree(run)) {
    if ((await Deno.stat(`${run}/${f}`)).isFile) before.set(f, await sha256(`${run}/${f}`));
  }

  // Another seed is another pipeline: refused, and nothing in the directory changes.
  const refused = await pipelineCli([file, "--out", run, "--set", "seed=6"], tmp.path);
  assert.equal(refused.code, 1, refused.stderr);
  assert.ok(!hasStackTrace(refused.stderr), refused.stderr);
  assert.match(
    refused.stderr,
    new RegExp(
      `^error: ${run} holds a run of a different pipeline \\(${run}/pipeline\\.json differs\\); ` +
        "choose another --out, or pass --force to start over there$",
      "m",
    ),
  );
  const after = new Map<string, string>();
  for (const f of await tree(run)) {
    if ((await Deno.stat(`${run}/${f}`)).isFile) after.set(f, await sha256(`${run}/${f}`));
  }
  assert.deepEqual(after, before);

  // With --force the directory is taken over: the result is that of a fresh run of the new
  // pipeline, nothing of the old run's stages is kept.
  const forced = await pipelineCli([file, "--out", run, "--set", "seed=6", "--force"], tmp.path);
  assertOk(forced, "--force");
  assert.doesNotMatch(forced.stdout, /finished earlier/);
  const fresh = `${tmp.path}/fresh`;
  assertOk(await pipelineCli([file, "--out", fresh, "--set", "seed=6"], tmp.path), "fresh run");
  assert.ok(await sameBytes(`${run}/summary.json`, `${fresh}/summary.json`));
  assert.ok(await sameBytes(await finalCheckpoint(run), await finalCheckpoint(fresh)));
  assert.notEqual(await sha256(`${run}/summary.json`), before.get("summary.json"));
  assert.equal(JSON.parse(await Deno.readTextFile(`${run}/pipeline.json`)).seed, 6);
  assert.deepEqual(await tree(`${run}/stages/train/ckpt`), ["2.safetensors"]);
});
