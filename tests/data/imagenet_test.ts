/**
 * ImageNet's validation split from an ImageFolder tree: torchvision's class
 * and file order, Cohen's test transform (Resize(256) = Pillow's antialiased
 * bilinear, CenterCrop(224)) byte for byte on Pillow's decoding, the whole
 * loader (jpeg-js decoding) close to torchvision's, bad files named. The tree
 * and torchvision's outputs are made at test time by
 * scripts/fixtures/make_imagenet_tree.py.
 */
import assert from "node:assert/strict";
import { decodeImagenetJpeg, loadImagenet } from "../../src/data/imagenet.ts";
import { loadDataset } from "../../src/data/load.ts";
import { resizeCenterCrop, shortSideSize } from "../../src/data/resize.ts";
import { DatasetError } from "../../src/data/errors.ts";
import { python, pythonHas, testNeeding } from "../_tools.ts";
import { imagenetTree } from "./_imagenet.ts";

const torchvision = {
  tool: `torchvision and Pillow (python3-torchvision, python3-pil) for ${python}`,
  available: await pythonHas("torchvision", "PIL", "numpy"),
};
testNeeding([torchvision], "imagenet: ImageFolder's order and Cohen's transform", async () => {
  const { root, index } = await imagenetTree();
  try {
    const ds = await loadDataset("imagenet", { root, split: "test", download: true });
    assert.equal(ds.count, index.images.length);
    assert.deepEqual([ds.channels, ds.height, ds.width, ds.classes], [3, 224, 224, 1000]);
    assert.deepEqual(Array.from(ds.labels), index.images.map((i) => i.label));
    for (const [n, im] of index.images.entries()) {
      const want = await Deno.readFile(`${root}/ref/${n}.out.rgb`);
      // The transform alone, on Pillow's decoding: Pillow's bytes exactly.
      const decoded = await Deno.readFile(`${root}/ref/${n}.decoded.rgb`);
      assert.deepEqual(resizeCenterCrop(decoded, im.width, im.height), want, im.file);
      // The whole loader: jpeg-js upsamples chroma by repetition where libjpeg-turbo
      // interpolates, so colour edges of 4:2:0 and 4:2:2 files differ by a few levels.
      const got = ds.decode!(n);
      let sum = 0, max = 0;
      for (let i = 0; i < want.length; i++) {
        const d = Math.abs(got[i] - want[i]);
        sum += d;
        max = Math.max(max, d);
      }
      assert.ok(sum / want.length < 1.5, `${im.file}: mean difference ${sum / want.length}`);
      assert.ok(max <= 64, `${im.file}: largest difference ${max}`);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("resize: torchvision's short-side size and Pillow's identity", () => {
  assert.deepEqual(shortSideSize(500, 375, 256), [341, 256]);
  assert.deepEqual(shortSideSize(333, 500, 256), [256, 384]);
  assert.deepEqual(shortSideSize(256, 300, 256), [256, 300]);
  const px = Uint8Array.from({ length: 256 * 300 * 3 }, (_, i) => (i * 7) % 251);
  const out = resizeCenterCrop(px, 256, 300);
  // No resampling at 256 on the short side: the crop takes rows 38.. and columns 16..
  assert.equal(out[0], px[(38 * 256 + 16) * 3]);
  assert.equal(out[224 * 224 + 5], px[(38 * 256 + 21) * 3 + 1]);
});

Deno.test("imagenet: bad trees and bad files are errors naming the path", async () => {
  const root = await Deno.makeTempDir();
  try {
    await assert.rejects(() => loadImagenet(root, "test"), /val: no ImageNet validation folder/);
    await assert.rejects(() => loadImagenet(root, "train"), /training on ImageNet is not/);
    await Deno.mkdir(`${root}/val/n0001`, { recursive: true });
    await assert.rejects(() => loadImagenet(root, "test"), /n0001: a class folder with no JPEG/);
    await Deno.writeFile(`${root}/val/n0001/a.png`, new Uint8Array(8));
    await assert.rejects(() => loadImagenet(root, "test"), /a\.png: only JPEG images are read/);
    await Deno.remove(`${root}/val/n0001/a.png`);
    await Deno.writeTextFile(`${root}/val/n0001/b.JPEG`, "not a jpeg at all");
    await Deno.writeTextFile(`${root}/val/n0001/notes.txt`, "ignored, as by ImageFolder");
    const ds = await loadImagenet(root, "test");
    assert.equal(ds.count, 1);
    assert.throws(
      () => ds.decode!(0),
      (e: unknown) =>
        e instanceof DatasetError && /b\.JPEG: not a JPEG file/.test((e as Error).message),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

testNeeding([torchvision], "imagenet: a truncated or corrupt JPEG names the file", async () => {
  const { root, index } = await imagenetTree();
  try {
    const path = `${root}/${index.images[0].file}`;
    const bytes = await Deno.readFile(path);
    for (const cut of [bytes.length - 2, bytes.length >> 1, 300]) {
      assert.throws(
        () => decodeImagenetJpeg(path, bytes.subarray(0, cut)),
        (e: unknown) =>
          e instanceof DatasetError && (e as Error).message.startsWith(`${path}: `) &&
          /truncated/.test((e as Error).message),
        `cut at ${cut}`,
      );
    }
    await Deno.writeFile(path, bytes.subarray(0, bytes.length >> 1));
    const ds = await loadImagenet(root, "test");
    assert.throws(() => ds.decode!(0), new RegExp(`${path.replaceAll(".", "\\.")}: corrupt or`));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
