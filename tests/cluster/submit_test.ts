/**
 * `cli.ts submit --dry-run`: the Slurm batch scripts are run by bash with a
 * stand-in for deno that prints its arguments (so the quoting and the shard
 * index from SLURM_ARRAY_TASK_ID are checked as a shell sees them), and the
 * Kubernetes manifests are validated offline against the Kubernetes schema by
 * PyPI's kubernetes-validate (installed by .ci/run into .tools/venv), with a
 * broken manifest as the control that the validator does reject.
 */
import assert from "node:assert/strict";
import { cli, hasStackTrace } from "../cli/_cli.ts";
import { testNeeding } from "../_tools.ts";
import { tempDir, tinyPipeline, writeJsonFile } from "../pipeline/_pipeline.ts";

const VALIDATE = new URL("../../.tools/venv/bin/kubernetes-validate", import.meta.url).pathname;
const hasValidator = await Deno.stat(VALIDATE).then(() => true, () => false);

/** The scripts of a dry run, by file name (`# <dir>/<file>` headers). */
function scriptsOf(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const block of stdout.split(/^# (?=\/)/m).slice(1)) {
    const nl = block.indexOf("\n");
    out.set(block.slice(0, nl).replace(/^.*\//, ""), block.slice(nl + 1));
  }
  return out;
}

/** Runs a batch script with bash, deno replaced by a printer of its arguments. */
async function argvOf(script: string, env: Record<string, string>): Promise<string[]> {
  await using tmp = await tempDir();
  await Deno.writeTextFile(`${tmp.path}/job.sh`, script);
  const out = await new Deno.Command("bash", {
    args: [`${tmp.path}/job.sh`],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout).split("\0").slice(0, -1);
}

Deno.test("submit --slurm --dry-run: a training job, a certification array after it, a merge job after that", async () => {
  await using tmp = await tempDir();
  const file = await writeJsonFile(`${tmp.path}/my study.json`, tinyPipeline({ name: "study" }));
  const printer = `${tmp.path}/print args`;
  await Deno.writeTextFile(printer, "#!/bin/sh\nprintf '%s\\0' \"$@\"\n", { mode: 0o755 });
  const set = `description="it's a test"`;
  const r = await cli([
    "submit",
    file,
    "--slurm",
    "--dry-run",
    "--array-size",
    "3",
    "--partition",
    "gpu",
    "--gpus-per-task",
    "1",
    "--time",
    "1:00:00",
    "--out",
    `${tmp.path}/run`,
    "--deno",
    printer,
    "--set",
    set,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const scripts = scriptsOf(r.stdout);
  assert.deepEqual([...scripts.keys()], ["train.sbatch", "certify.sbatch", "merge.sbatch"]);
  const certify = scripts.get("certify.sbatch")!;
  for (
    const line of [
      "#SBATCH --array=0-2",
      "#SBATCH --partition=gpu",
      "#SBATCH --gpus-per-task=1",
      "#SBATCH --time=1:00:00",
      `#SBATCH --output=${tmp.path}/run/slurm/certify-%A_%a.out`,
    ]
  ) assert.ok(certify.includes(line + "\n"), `${line} in\n${certify}`);
  assert.doesNotMatch(scripts.get("merge.sbatch")!, /gpus/);
  assert.match(r.stdout, /CERTIFY=\$\(sbatch --parsable --dependency=afterok:\$TRAIN /);
  assert.match(r.stdout, /MERGE=\$\(sbatch --parsable --dependency=afterok:\$CERTIFY /);

  const common = ["run", "--allow-all", `${new URL("../../cli.ts", import.meta.url).pathname}`];
  const pipeline = [...common, "pipeline", file, "--out", `${tmp.path}/run`, "--set", set];
  assert.deepEqual(
    await argvOf(certify, { SLURM_ARRAY_TASK_ID: "2" }),
    [...pipeline, "--shard", "2/3"],
  );
  assert.deepEqual(await argvOf(scripts.get("train.sbatch")!, {}), [...pipeline, "--train-only"]);
  assert.deepEqual(await argvOf(scripts.get("merge.sbatch")!, {}), [
    ...common,
    "merge",
    `${tmp.path}/run`,
  ]);
});

Deno.test("submit --slurm: a matrix is one array task per combination; bad flags are named", async () => {
  await using tmp = await tempDir();
  const p = { ...tinyPipeline({ name: "grid" }), matrix: { sigma: [0.25, 0.5, 1] } };
  const file = await writeJsonFile(`${tmp.path}/grid.json`, p);
  const r = await cli(["submit", file, "--slurm", "--dry-run", "--out", `${tmp.path}/run`]);
  assert.equal(r.code, 0, r.stderr);
  const scripts = scriptsOf(r.stdout);
  assert.deepEqual([...scripts.keys()], ["certify.sbatch"]);
  assert.match(scripts.get("certify.sbatch")!, /--array=0-2\n/);
  assert.match(scripts.get("certify.sbatch")!, /--combination "\$\{SLURM_ARRAY_TASK_ID\}"/);
  for (
    const [args, message] of [
      [["--slurm", "--k8s"], /one of --slurm and --k8s/],
      [["--slurm", "--array-size", "0"], /--array-size 0: expected an integer >= 1/],
      [["--k8s"], /--k8s needs --image and --claim/],
    ] as const
  ) {
    const bad = await cli(["submit", file, "--dry-run", ...args]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, message);
    assert.ok(!hasStackTrace(bad.stderr));
  }
  // Without a Slurm, submitting (not a dry run) names what is missing.
  const none = await cli(["submit", file, "--slurm", "--out", `${tmp.path}/run2`], {
    MACER_SBATCH: `${tmp.path}/no-sbatch`,
  });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no-sbatch: not found/);
});

testNeeding(
  [{ tool: "kubernetes-validate (PyPI, in .tools/venv)", available: hasValidator }],
  "submit --k8s: an Indexed Job between a training Job and a merge Job, valid against the Kubernetes 1.37 schema",
  async () => {
    await using tmp = await tempDir();
    const file = await writeJsonFile(`${tmp.path}/study.json`, tinyPipeline({ name: "Study_1" }));
    const dir = `${tmp.path}/k8s`;
    const r = await cli([
      "submit",
      file,
      "--k8s",
      "--image",
      "registry.example/macer:1",
      "--claim",
      "runs",
      "--gpus-per-task",
      "1",
      "--array-size",
      "4",
      "--manifests",
      dir,
      "--out",
      "/runs/study",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /kubectl apply -f \S*train\.yaml\nkubectl wait --for=condition=complete/,
    );
    const certify = await Deno.readTextFile(`${dir}/certify.yaml`);
    assert.match(certify, /completionMode: "Indexed"/);
    assert.match(certify, /completions: 4/);
    assert.match(certify, /"\$\(JOB_COMPLETION_INDEX\)\/4"/);
    assert.match(certify, /name: "study-1-certify"/);
    const validate = async (...files: string[]) =>
      await new Deno.Command(VALIDATE, {
        args: ["--strict", "-k", "1.37.0", ...files],
        stdout: "piped",
        stderr: "piped",
      }).output();
    const files = ["train", "certify", "merge"].map((n) => `${dir}/${n}.yaml`);
    const ok = await validate(...files);
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    assert.ok(ok.success, text(ok.stdout) + text(ok.stderr));
    assert.equal(text(ok.stdout).match(/passed/g)?.length, 3, text(ok.stdout));
    // The control: a misspelt field and a wrong type are rejected.
    await Deno.writeTextFile(
      `${tmp.path}/bad.yaml`,
      certify.replace("completionMode:", "completionMod:").replace(
        "completions: 4",
        'completions: "4"',
      ),
    );
    const bad = await validate(`${tmp.path}/bad.yaml`);
    assert.ok(!bad.success, text(bad.stdout));
  },
);
