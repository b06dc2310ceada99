/**
 * Bit-identical resume through the command line, in the hard case: ResNet-110
 * on CIFAR-10 files (random crop and flip augmentation, batch norm), stopped
 * before a learning-rate milestone and resumed across it, the resumed part on
 * another thread count. The checkpoints must match byte for byte.
 */
import assert from "node:assert/strict";
import { tempDir } from "../data/_helpers.ts";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { cli, hasStackTrace, type Run, writeCifar10 } from "./_cli.ts";

function ok(r: Run, what: string): void {
  assert.equal(r.code, 0, `${what}: exit ${r.code}\n${r.stderr}`);
  assert.ok(!hasStackTrace(r.stderr), r.stderr);
}

/**
 * Each epoch's losses in full precision and its summary line without the
 * epoch count and time: `epoch E  lr L  classification C  robustness R`.
 */
function epochLines(stdout: string): string[] {
  return stdout.split("\n")
    .filter((l) => /^epoch \d+\/|^Classification Loss: /.test(l))
    .map((l) => l.replace(/^(epoch \d+)\/\d+/, "$1").replace(/ {2}[\d.]+ s$/, ""));
}

/** Names of the tensors and metadata entries in which two checkpoints differ. */
async function differences(a: string, b: string): Promise<string[]> {
  const [x, y] = [await readSafetensors(a), await readSafetensors(b)];
  const out: string[] = [];
  for (const name of new Set([...Object.keys(x.tensors), ...Object.keys(y.tensors)])) {
    const [p, q] = [x.tensors[name], y.tensors[name]];
    if (!p || !q || JSON.stringify(p.shape) !== JSON.stringify(q.shape)) out.push(name);
    else {
      const bytes = (t: typeof p) =>
        new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      if (bytes(p).some((v, i) => v !== bytes(q)[i])) out.push(name);
    }
  }
  for (const key of new Set([...Object.keys(x.metadata), ...Object.keys(y.metadata)])) {
    if (x.metadata[key] !== y.metadata[key]) {
      out.push(`metadata ${key}: ${x.metadata[key]} vs ${y.metadata[key]}`);
    }
  }
  return out;
}

Deno.test("macer --resume_ckpt continues ResNet-110 on augmented CIFAR-10 bit-identically across a milestone", async () => {
  await using tmp = await tempDir();
  await writeCifar10(tmp.path, 6, 1);
  const common = [
    "macer",
    "--task",
    "train",
    "--dataset",
    "cifar10",
    "--root",
    tmp.path,
    "--offline",
    "--num_train",
    "6",
    "--batch_size",
    "4",
    "--gauss_num",
    "2",
    "--milestones",
    "2,3",
    "--seed",
    "3",
  ];
  const whole = await cli([
    ...common,
    "--epochs",
    "3",
    "--threads",
    "2",
    "--ckptdir",
    `${tmp.path}/a`,
  ]);
  ok(whole, "uninterrupted");
  const first = await cli([
    ...common,
    "--epochs",
    "1",
    "--threads",
    "2",
    "--ckptdir",
    `${tmp.path}/b`,
  ]);
  ok(first, "first epoch");
  const rest = await cli([
    ...common,
    "--epochs",
    "3",
    "--threads",
    "1",
    "--resume_ckpt",
    `${tmp.path}/b/1.safetensors`,
    "--ckptdir",
    `${tmp.path}/b`,
  ]);
  ok(rest, "resumed");

  // The schedule crosses both milestones in the resumed part: 0.01, then x0.1 at epochs 2 and 3.
  const lines = epochLines(whole.stdout);
  const lrs = lines.filter((l) => l.startsWith("epoch")).map((l) =>
    Number(l.match(/ lr (\S+) /)![1])
  );
  assert.equal(lrs.length, 3);
  lrs.forEach((lr, i) => assert.ok(Math.abs(lr / (0.01 * 0.1 ** i) - 1) < 1e-12, `${lrs}`));
  assert.ok(!rest.stdout.includes("===train(epoch=1)==="));
  assert.deepEqual([...epochLines(first.stdout), ...epochLines(rest.stdout)], lines);

  const [a, b] = [`${tmp.path}/a/3.safetensors`, `${tmp.path}/b/3.safetensors`];
  assert.deepEqual(await differences(a, b), []);
  assert.deepEqual(await Deno.readFile(a), await Deno.readFile(b), "byte for byte");
  const meta = (await readSafetensors(a)).metadata;
  assert.deepEqual([meta.epoch, meta.milestones, JSON.parse(meta.config).model], [
    "3",
    "[2,3]",
    "resnet110",
  ]);
});
