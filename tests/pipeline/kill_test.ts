/**
 * Resume after real kills: `cli.ts pipeline` runs as a child process and is
 * killed with SIGKILL at several moments (during training after a
 * checkpoint, while a checkpoint is being written, between the train and
 * certify stages, during certification), then run again into the same
 * directory. The moments are chosen by polling the run directory; the child
 * is stopped (SIGSTOP) the moment a condition holds, so the state it is
 * killed in can be checked, then killed. The final summary.json and
 * checkpoint must be byte-identical to an uninterrupted run's.
 */
import assert from "node:assert/strict";
import {
  assertOk,
  exists,
  finalCheckpoint,
  pipelineCli,
  sameBytes,
  spawnPipeline,
  tempDir,
  tinyPipeline,
  tree,
  writeJsonFile,
} from "./_pipeline.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `holds` until it is true, then stops the child (SIGSTOP) so that the
 * run directory stays as it was at that moment.
 *
 * @throws when the child exits first, or after a minute
 */
async function stopWhen(
  child: Deno.ChildProcess,
  what: string,
  holds: () => Promise<boolean>,
): Promise<void> {
  let exited: Deno.CommandStatus | undefined;
  child.status.then((s) => exited = s);
  const deadline = Date.now() + 60_000;
  while (exited === undefined) {
    if (await holds()) {
      child.kill("SIGSTOP");
      return;
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      await child.status;
      throw new Error(`no ${what} within a minute`);
    }
    await sleep(1);
  }
  throw new Error(`the run exited (code ${exited.code}) before ${what}`);
}

/** Kills the (stopped) child with SIGKILL and checks that it died of it. */
async function kill(child: Deno.ChildProcess): Promise<void> {
  child.kill("SIGKILL");
  const status = await child.status;
  assert.equal(status.signal, "SIGKILL", `exit code ${status.code}`);
}

/** Checkpoint files of a run's train stage: the finished ones and the ones being written. */
async function ckptFiles(run: string): Promise<{ done: string[]; temp: string[] }> {
  const names = await tree(`${run}/stages/train/ckpt`);
  return {
    done: names.filter((n) => /^\d+\.safetensors$/.test(n)),
    temp: names.filter((n) => n.includes(".tmp")),
  };
}

Deno.test("a pipeline killed with SIGKILL at several moments and run again ends byte-identical to an uninterrupted run", async () => {
  await using tmp = await tempDir();
  const file = await writeJsonFile(
    `${tmp.path}/kill.json`,
    tinyPipeline({ name: "kill", epochs: 6, numTrain: 256, numImg: 10 }),
  );
  const ref = `${tmp.path}/ref`;
  assertOk(await pipelineCli([file, "--out", ref], tmp.path), "uninterrupted run");

  const run = `${tmp.path}/run`;
  const args = [file, "--out", run];
  const trainDone = () => exists(`${run}/stages/train/done.json`);
  const certifyDone = () => exists(`${run}/stages/certify/done.json`);
  const moments: string[] = [];

  // 1. During training, once the first checkpoint exists.
  let child = spawnPipeline(args, tmp.path);
  await stopWhen(child, "first checkpoint", async () => (await ckptFiles(run)).done.length > 0);
  assert.equal(await trainDone(), false, "killed during training");
  const first = (await ckptFiles(run)).done;
  await kill(child);
  moments.push(`training after checkpoint ${first.join(", ")}`);

  // 2. While a checkpoint is being written: its temporary file is there, not yet renamed.
  // (Where the write is too quick to be caught, the child is stopped at the end of training.)
  child = spawnPipeline(args, tmp.path);
  await stopWhen(
    child,
    "a checkpoint being written or the end of training",
    async () => (await ckptFiles(run)).temp.length > 0 || await trainDone(),
  );
  const writing = await ckptFiles(run);
  await kill(child);
  moments.push(
    writing.temp.length > 0
      ? `while writing ${writing.temp.join(", ")} (finished: ${writing.done.join(", ")})`
      : "at the end of training (no checkpoint write caught)",
  );
  // A checkpoint cut short is never taken for one: the newest finished one is the resume point.
  assert.equal(writing.done.length, 1, `only the newest checkpoint is kept: ${writing.done}`);

  // 3. Between stages: the train stage has finished, certification has not.
  child = spawnPipeline(args, tmp.path);
  await stopWhen(child, "the end of the train stage", trainDone);
  assert.equal(await certifyDone(), false, "killed before certification finished");
  await kill(child);
  moments.push("between the train and certify stages");

  // 4. During certification: its per-image log exists, its done.json does not.
  child = spawnPipeline(args, tmp.path);
  await stopWhen(
    child,
    "certification",
    () => exists(`${run}/stages/certify/certify.hard.tsv`),
  );
  assert.equal(await certifyDone(), false, "killed during certification");
  await kill(child);
  moments.push("during certification");
  assert.equal(await exists(`${run}/summary.json`), false);

  // Run to the end: the same bytes as the uninterrupted run.
  const last = await pipelineCli(args, tmp.path);
  assertOk(last, "final run");
  assert.match(last.stdout, /^train: finished earlier, kept$/m);
  assert.ok(await sameBytes(`${run}/summary.json`, `${ref}/summary.json`), moments.join("; "));
  assert.ok(await sameBytes(await finalCheckpoint(run), await finalCheckpoint(ref)));
  assert.deepEqual((await ckptFiles(run)).done, ["6.safetensors"]);
  const log = await Deno.readTextFile(`${run}/log.txt`);
  assert.match(log, /^train: resuming from .*\/ckpt\/\d+\.safetensors$/m);
  // Every epoch appears once in the summary, in order, whatever was cut.
  const summary = JSON.parse(await Deno.readTextFile(`${run}/summary.json`));
  assert.deepEqual(summary.stages[0].epochs.map((e: { epoch: number }) => e.epoch), [
    1,
    2,
    3,
    4,
    5,
    6,
  ]);
  // The manifest has every stage's time, those of the stages kept from earlier runs too.
  const manifest = JSON.parse(await Deno.readTextFile(`${run}/manifest.json`));
  assert.deepEqual(Object.keys(manifest.stages), ["train", "certify", "predict"]);
  assert.equal(manifest.stages.train.epoch_seconds.length, 6);
  console.log(`killed: ${moments.join("; ")}`);
});
