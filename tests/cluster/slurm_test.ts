/**
 * A study through a real Slurm: a one-node cluster on loopback (see _slurm.ts),
 * `cli.ts submit --slurm` submitting the training job, the certification array
 * of 4 shards and the merge job. On the way, the two failures a cluster user
 * meets: the node is drained when the jobs are submitted (they pend; the node
 * is resumed), and one shard is cancelled mid-way (its part is absent, the
 * merge job never runs, `merge` names the part; the shard is submitted again,
 * resumes from its journal, and the run is merged). The merged run must hold
 * the files of a single-process run of the same pipeline, byte for byte apart
 * from measured times (see ../pipeline/_shards.ts), the checkpoint trained in
 * Slurm included.
 */
import assert from "node:assert/strict";
import { testNeeding } from "../_tools.ts";
import { assertSameRun } from "../pipeline/_shards.ts";
import {
  assertOk,
  exists,
  type Json,
  pipelineCli,
  sameBytes,
  tempDir,
  tinyPipeline,
  writeJsonFile,
} from "../pipeline/_pipeline.ts";
import { cli } from "../cli/_cli.ts";
import { slurmNeeds, startCluster, until } from "./_slurm.ts";

/** Training as the tiny pipeline; 12 images certified (3 a shard), 4 predicted; no report. */
function pipeline(): Json {
  const p = tinyPipeline({ name: "slurm", epochs: 1, numTrain: 64 });
  const [train, certify, predict] = p.stages as Json[];
  Object.assign(certify, { mode: "hard", n0: 50, n: 3000, batch: 1000, num_img: 12 });
  // One thread a job: the node's two CPUs run two shards at once.
  return { ...p, threads: 1, stages: [train, certify, predict] };
}

const MINUTE = 60_000;

testNeeding(
  await slurmNeeds(),
  "a study submitted to a real Slurm (drained node, a shard cancelled mid-way) merges into a single-process run's files",
  async () => {
    await using tmp = await tempDir();
    await using cluster = await startCluster(2);
    const slurm = (cmd: string, ...args: string[]) => cluster.run(cmd, ...args);
    const file = await writeJsonFile(`${tmp.path}/slurm.json`, pipeline());
    const run = `${tmp.path}/cluster/run`;
    const state = async (job: string) =>
      (await slurm("squeue", "-h", "-j", job, "-o", "%T %r")).trim();
    const explain = async () =>
      `${await slurm("squeue", "-a").catch((e) => String(e))}\n${await cluster.logs()}\n${await Deno
        .readTextFile(`${run}/log.txt`).catch(() => "")}`;

    // A drained node: the submitted jobs pend.
    await slurm("scontrol", "update", `nodename=${cluster.node}`, "state=drain", "reason=test");
    const sub = await cli(
      ["submit", file, "--slurm", "--array-size", "4", "--out", run, "--time", "10:00"],
      cluster.env,
    );
    assert.equal(sub.code, 0, sub.stderr);
    const ids = Object.fromEntries(
      [...sub.stdout.matchAll(/^(train|certify|merge): job (\d+)/gm)].map((m) => [m[1], m[2]]),
    );
    assert.deepEqual(Object.keys(ids), ["train", "certify", "merge"], sub.stdout);
    await new Promise((r) => setTimeout(r, 2000));
    assert.match(await state(ids.train), /^PENDING /, await explain());
    assert.match(await slurm("sinfo", "-h", "-n", cluster.node, "-o", "%T"), /drain/);
    assert.ok(!(await exists(`${run}/stages/train/done.json`)), "trained on a drained node");
    await slurm("scontrol", "update", `nodename=${cluster.node}`, "state=resume");

    // Shard 2 cancelled once it has certified an image and before its part is written.
    const journal = `${run}/stages/certify/parts/2-of-4/certify.journal.jsonl`;
    await until(
      "shard 2 mid-way",
      async () => {
        const lines = await Deno.readTextFile(journal).then(
          (t) => t.split("\n").length - 1,
          () => 0,
        );
        return lines >= 1;
      },
      3 * MINUTE,
      explain,
    );
    await slurm("scancel", `${ids.certify}_2`);
    // The other shards finish; the merge job waits (for ever) on the cancelled one.
    await until(
      "shards 0, 1, 3",
      async () => {
        const left = (await slurm("squeue", "-h", "-o", "%i")).trim().split("\n");
        return left.length === 1 && left[0] === ids.merge;
      },
      3 * MINUTE,
      explain,
    );
    // (Dependency, then DependencyNeverSatisfied once slurmctld has looked again.)
    assert.match(await state(ids.merge), /^PENDING Dependency/);
    const parts = `${run}/stages/certify/parts`;
    for (const i of [0, 1, 3]) assert.ok(await exists(`${parts}/${i}-of-4.part.json`), `part ${i}`);
    assert.ok(!(await exists(`${parts}/2-of-4.part.json`)), "the cancelled shard left its part");
    assert.ok(!(await exists(`${run}/summary.json`)), "merged without shard 2");
    const early = await cli(["merge", run]);
    assert.equal(early.code, 1);
    assert.match(early.stderr, /stage certify: part 2-of-4 is missing/);

    // Shard 2 again, then a merge job after it.
    await slurm("scancel", ids.merge);
    const again = (await slurm(
      "sbatch",
      "--parsable",
      "--array=2",
      `${run}/slurm/certify.sbatch`,
    )).trim();
    const merge = (await slurm(
      "sbatch",
      "--parsable",
      `--dependency=afterok:${again}`,
      `${run}/slurm/merge.sbatch`,
    )).trim();
    await until(
      "the merge job",
      async () => {
        return (await slurm("squeue", "-h", "-o", "%i")).trim() === "";
      },
      3 * MINUTE,
      explain,
    );
    const done = await slurm("scontrol", "show", "job", merge);
    assert.match(done, /JobState=COMPLETED/, `${done}\n${await explain()}`);
    assert.match(await Deno.readTextFile(`${run}/log.txt`), /certify: shard 2\/4, 3 images/);

    // The same pipeline in one process, training included.
    assertOk(await pipelineCli([file, "--out", `${tmp.path}/single/run`]), "single-process run");
    const compared = await assertSameRun(`${tmp.path}/single/run`, run);
    assert.ok(compared.whole >= 5, `only ${compared.whole} files compared whole`);
    const ckpt = "stages/train/ckpt/1.safetensors";
    assert.ok(await sameBytes(`${tmp.path}/single/run/${ckpt}`, `${run}/${ckpt}`));
    assert.ok(await sameBytes(`${tmp.path}/single/run/summary.json`, `${run}/summary.json`));
  },
);
