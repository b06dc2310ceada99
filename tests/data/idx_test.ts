import assert from "node:assert/strict";
import { DatasetError, loadDataset, parseIdx } from "../../src/data/mod.ts";
import { InputError } from "../../src/errors.ts";
import { gzip, idxBytes, patternBytes, tempDir } from "./_helpers.ts";

const N = 5;
const IMAGES = patternBytes(N * 28 * 28);
const LABELS = Uint8Array.from([3, 1, 4, 1, 5]);

async function writeSplit(
  dir: string,
  opts: { gz: boolean; images?: Uint8Array; labels?: Uint8Array; split?: "train" | "test" },
) {
  await Deno.mkdir(dir, { recursive: true });
  const prefix = (opts.split ?? "train") === "train" ? "train" : "t10k";
  const ext = opts.gz ? ".gz" : "";
  const img = opts.images ?? idxBytes([N, 28, 28], IMAGES);
  const lab = opts.labels ?? idxBytes([N], LABELS);
  await Deno.writeFile(`${dir}/${prefix}-images-idx3-ubyte${ext}`, opts.gz ? gzip(img) : img);
  await Deno.writeFile(`${dir}/${prefix}-labels-idx1-ubyte${ext}`, opts.gz ? gzip(lab) : lab);
}

Deno.test("loadDataset() reads plain IDX files from the root folder", async () => {
  await using tmp = await tempDir();
  await writeSplit(tmp.path, { gz: false });
  const ds = await loadDataset("mnist", { root: tmp.path, split: "train" });
  assert.equal(ds.count, N);
  assert.deepEqual([ds.channels, ds.height, ds.width, ds.classes], [1, 28, 28, 10]);
  assert.deepEqual(ds.images, IMAGES);
  assert.deepEqual(ds.labels, LABELS);
});

Deno.test("loadDataset() reads gzipped IDX files in torchvision's MNIST/raw layout", async () => {
  await using tmp = await tempDir();
  await writeSplit(`${tmp.path}/MNIST/raw`, { gz: true, split: "test" });
  const ds = await loadDataset("mnist", { root: tmp.path, split: "test" });
  assert.equal(ds.split, "test");
  assert.deepEqual(ds.images, IMAGES);
  assert.deepEqual(ds.labels, LABELS);
});

Deno.test("loadDataset() finds Fashion-MNIST under FashionMNIST/raw", async () => {
  await using tmp = await tempDir();
  await writeSplit(`${tmp.path}/FashionMNIST/raw`, { gz: true });
  const ds = await loadDataset("fashion-mnist", { root: tmp.path, split: "train" });
  assert.equal(ds.name, "fashion-mnist");
  assert.deepEqual(ds.labels, LABELS);
  await assert.rejects(loadDataset("mnist", { root: tmp.path, split: "train" }), DatasetError);
});

Deno.test("loadDataset() rejects a missing IDX file and names it", async () => {
  await using tmp = await tempDir();
  await writeSplit(tmp.path, { gz: false });
  await Deno.remove(`${tmp.path}/train-labels-idx1-ubyte`);
  await assert.rejects(
    loadDataset("mnist", { root: tmp.path, split: "train" }),
    (err: Error) => {
      assert.ok(err instanceof InputError);
      assert.match(err.message, /train-labels-idx1-ubyte\[\.gz\] not found/);
      return true;
    },
  );
});

Deno.test("loadDataset() rejects an IDX file with a wrong magic number", async () => {
  await using tmp = await tempDir();
  await writeSplit(tmp.path, { gz: false, images: idxBytes([N, 28, 28], IMAGES, 0x0801) });
  await assert.rejects(
    loadDataset("mnist", { root: tmp.path, split: "train" }),
    /train-images-idx3-ubyte: wrong IDX magic number 0x00000801/,
  );
});

Deno.test("loadDataset() rejects a truncated IDX file", async () => {
  await using tmp = await tempDir();
  const full = idxBytes([N, 28, 28], IMAGES);
  await writeSplit(tmp.path, { gz: true, images: full.subarray(0, full.length - 100) });
  await assert.rejects(
    loadDataset("mnist", { root: tmp.path, split: "train" }),
    /train-images-idx3-ubyte\.gz: IDX file truncated/,
  );
});

Deno.test("loadDataset() rejects a truncated gzip stream", async () => {
  await using tmp = await tempDir();
  await writeSplit(tmp.path, { gz: true });
  const path = `${tmp.path}/train-images-idx3-ubyte.gz`;
  const gz = await Deno.readFile(path);
  await Deno.writeFile(path, gz.subarray(0, gz.length >> 1));
  await assert.rejects(
    loadDataset("mnist", { root: tmp.path, split: "train" }),
    /train-images-idx3-ubyte\.gz: corrupt or truncated gzip data/,
  );
});

Deno.test("loadDataset() rejects IDX files whose counts disagree", async () => {
  await using tmp = await tempDir();
  await writeSplit(tmp.path, { gz: false, labels: idxBytes([N - 1], LABELS.subarray(1)) });
  await assert.rejects(
    loadDataset("mnist", { root: tmp.path, split: "train" }),
    /holds 4 labels but .* holds 5 images/,
  );
});

Deno.test("loadDataset() rejects an IDX label out of range", async () => {
  await using tmp = await tempDir();
  await writeSplit(tmp.path, {
    gz: false,
    labels: idxBytes([N], Uint8Array.from([1, 2, 10, 3, 4])),
  });
  await assert.rejects(
    loadDataset("mnist", { root: tmp.path, split: "train" }),
    /train-labels-idx1-ubyte: label 10 of image 2 is out of range/,
  );
});

Deno.test("parseIdx() rejects trailing bytes", () => {
  const b = new Uint8Array([...idxBytes([2], Uint8Array.from([1, 2])), 9]);
  assert.throws(() => parseIdx(b, "x.idx", 1), /x\.idx: IDX file has trailing bytes/);
});
