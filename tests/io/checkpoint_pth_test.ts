/**
 * PyTorch checkpoints load into our models: files saved by PyTorch as MACER's
 * `main.py` and Cohen et al.'s `train.py` save them (zip and legacy formats)
 * give the same eval-mode logits as PyTorch on the same inputs; files that do
 * not fit are refused with every mismatch listed. The checkpoints are written
 * at test time by scripts/fixtures/make_pth_fixtures.py (needs PyTorch; see
 * tests/_tools.ts); the mismatch test uses a committed file.
 */
import assert from "node:assert/strict";
import { Var } from "../../compute/autograd.ts";
import { Tensor, tidy } from "../../compute/tensor.ts";
import { checkpointArch, CheckpointError, loadCheckpoint } from "../../src/io/checkpoint.ts";
import { buildModel } from "../../src/train/models.ts";
import { maxRelDiff } from "../nn/_formula.ts";
import { python, pythonHas, testNeeding } from "../_tools.ts";
import { torchCheckpoint } from "./_torch.ts";

const fixtures = new URL("../fixtures/pth/", import.meta.url).pathname;
const torch = {
  tool: `PyTorch (python3-torch) for ${python}`,
  available: await pythonHas("torch", "numpy"),
};

const cases: [string, "macer" | "cohen" | "plain", "zip" | "legacy"][] = [
  ["lenet", "macer", "zip"],
  ["lenet", "macer", "legacy"],
  ["resnet110", "plain", "zip"],
  ["cifar_resnet20", "cohen", "legacy"],
  ["cifar_resnet20", "cohen", "zip"],
  ["cifar_resnet110", "cohen", "legacy"],
];
for (const [arch, style, format] of cases) {
  testNeeding(
    [torch],
    `loadCheckpoint() loads a ${style}-style ${format} .pth of ${arch} with PyTorch's logits`,
    async () => {
      const dir = await Deno.makeTempDir();
      const c = await torchCheckpoint(dir, arch, style, format);
      if (style === "cohen") assert.equal(await checkpointArch(c.path), arch);
      const model = buildModel(arch, 99, 10).eval();
      const loaded = await loadCheckpoint(c.path, model);
      assert.equal(loaded.format, format === "zip" ? "torch-zip" : "torch-legacy");
      assert.equal(loaded.state.epoch, style === "cohen" ? 90 : style === "macer" ? 1 : 0);
      const ours = tidy(() =>
        Array.from(
          model.forward(Var.constant(Tensor.fromF32(Float32Array.from(c.input), c.shape))).value
            .toF32(),
        )
      );
      const theirs = c.logits.flat();
      assert.equal(ours.length, theirs.length);
      assert.ok(maxRelDiff(ours, theirs) < 1e-4, `logits differ: ${ours} vs ${theirs}`);
      await Deno.remove(dir, { recursive: true });
    },
  );
}

testNeeding(
  [torch],
  "loadCheckpoint() refuses a Cohen checkpoint for a model without its normalisation, naming arch",
  async () => {
    const dir = await Deno.makeTempDir();
    const c = await torchCheckpoint(dir, "cifar_resnet20", "cohen", "legacy");
    await assert.rejects(
      () => loadCheckpoint(c.path, buildModel("resnet110", 0, 10)),
      /architecture "cifar_resnet20".*\n {2}missing conv1\.weight \[16,3,3,3\]/,
    );
    await Deno.remove(dir, { recursive: true });
  },
);

Deno.test("loadCheckpoint() lists every tensor of a .pth that does not fit, with its shape", async () => {
  const path = fixtures + "lenet_mismatch.pth";
  const model = buildModel("lenet", 0, 10);
  const err = await loadCheckpoint(path, model).then(() => undefined, (e) => e);
  assert.ok(err instanceof CheckpointError, String(err));
  const lines = err.message.split("\n").map((l: string) => l.trim());
  assert.ok(lines[0].startsWith(`Cannot load checkpoint ${path}: its tensors do not fit`));
  assert.deepEqual(lines.slice(1), [
    "conv1.weight: shape [20,1,3,3] in the file, the model expects [20,1,5,5]",
    "missing conv2.weight [50,20,5,5]",
    "fc1.weight: shape [1,1] in the file, the model expects [500,800]",
    "missing fc2.weight [10,500]",
    "missing fc2.bias [10]",
    'unexpected "fc3.weight" [10,5]',
  ]);
});

for (
  const [file, message] of [
    ["os_system.pth", /refusing global os\.system/],
    ["missing_storage.pth", /missing from the archive/],
    ["truncated_zip.pth", /truncated/],
    ["truncated_legacy.pth", /truncated/],
    ["neither.pth", /neither a PyTorch checkpoint \(.pth, .pth.tar: a zip archive or a pickle\)/],
  ] as const
) {
  Deno.test(`loadCheckpoint() refuses ${file} naming the file`, async () => {
    const path = fixtures + file;
    await assert.rejects(() => loadCheckpoint(path, buildModel("lenet", 0, 10)), (e: Error) => {
      assert.ok(e instanceof CheckpointError);
      assert.ok(e.message.startsWith(`Cannot load checkpoint ${path}: `), e.message);
      assert.match(e.message, message);
      return true;
    });
  });
}
