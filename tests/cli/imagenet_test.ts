/**
 * ImageNet from the command line: a Cohen-style ResNet-50 checkpoint and a
 * plain torchvision one (written by PyTorch at test time, ~100 MB) certify
 * and predict on a tiny generated val/<wnid>/*.JPEG tree; training on it is
 * refused before any work.
 */
import assert from "node:assert/strict";
import { parseCertifyLog, parsePredictLog } from "../../src/io/results.ts";
import { torchCheckpoint } from "../io/_torch.ts";
import { imagenetTree } from "../data/_imagenet.ts";
import { python, pythonHas, testNeeding } from "../_tools.ts";
import { cli, hasStackTrace } from "./_cli.ts";

const torchvision = {
  tool: `PyTorch and torchvision (python3-torch, python3-torchvision) for ${python}`,
  available: await pythonHas("torch", "torchvision", "PIL"),
};

testNeeding(
  [torchvision],
  "macer --task predict and test run torchvision's resnet50 on an ImageNet tree",
  async () => {
    const { root, index } = await imagenetTree();
    try {
      const c = await torchCheckpoint(root, "torchvision_resnet50", "plain", "zip");
      const common = ["--dataset", "imagenet", "--root", root, "--resume_ckpt", c.path];
      const predict = await cli([
        "macer",
        "--task",
        "predict",
        ...common,
        "--skip",
        "4",
        "--max",
        "-1",
        "--N",
        "6",
        "--batch",
        "3",
        "--alpha",
        "0.1",
        "--matdir",
        `${root}/out`,
      ]);
      assert.equal(predict.code, 0, predict.stderr);
      const rows = parsePredictLog(await Deno.readTextFile(`${root}/out/0.predict.tsv`));
      assert.deepEqual(rows.map((r) => r.idx), [0, 4]);
      assert.deepEqual(rows.map((r) => r.label), [0, 4].map((i) => index.images[i].label));
      assert.ok(rows.every((r) => r.predict >= -1 && r.predict < 1000), JSON.stringify(rows));
      assert.match(
        predict.stdout,
        /^accuracy [\d.]+ \(\d\/2\) {2}abstention rate [\d.]+ \(\d\/2\)$/m,
      );

      const test = await cli([
        "macer",
        "--task",
        "test",
        ...common,
        "--start_img",
        "1",
        "--num_img",
        "1",
        "--N0",
        "2",
        "--N",
        "4",
        "--batch",
        "2",
        "--mode",
        "hard",
        "--matdir",
        `${root}/cert`,
      ]);
      assert.equal(test.code, 0, test.stderr);
      const log = parseCertifyLog(await Deno.readTextFile(`${root}/cert/0.hard.tsv`));
      assert.deepEqual(log.map((r) => [r.idx, r.label]), [[1, index.images[1].label]]);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
);

Deno.test("macer refuses to train on imagenet and names a missing tree", async () => {
  const train = await cli(["macer", "--task", "train", "--dataset", "imagenet"]);
  assert.equal(train.code, 2);
  assert.match(train.stderr, /training on ImageNet is not supported/);
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(`${dir}/c.pth`, new Uint8Array(16));
  const missing = await cli([
    "macer",
    "--task",
    "predict",
    "--dataset",
    "imagenet",
    "--root",
    dir,
    "--resume_ckpt",
    `${dir}/c.pth`,
  ]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /val: no ImageNet validation folder: expected <root>\/val\/<wnid>/);
  assert.ok(!hasStackTrace(missing.stderr), missing.stderr);
  await Deno.remove(dir, { recursive: true });
});
