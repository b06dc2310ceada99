import assert from "node:assert/strict";
import { read as readMat } from "mat-for-js";
import { loadDataset, readMatV5 } from "../../src/data/mod.ts";
import { matBytes, md5, svhnVars, tempDir } from "./_helpers.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
const expected = JSON.parse(await Deno.readTextFile(`${FIXTURES}expected.json`));

for (const folder of ["svhn_plain", "svhn_compressed"]) {
  Deno.test(`loadDataset() reads SVHN written by scipy.io.savemat (${folder})`, async () => {
    const ds = await loadDataset("svhn", { root: `${FIXTURES}${folder}`, split: "test" });
    assert.equal(ds.count, 3);
    assert.deepEqual([ds.channels, ds.height, ds.width, ds.classes], [3, 32, 32, 10]);
    assert.deepEqual([...ds.labels], expected.svhn.labels); // 10 became 0
    assert.equal(md5(ds.images), expected.svhn.md5);
    assert.equal(ds.images[1 * 3072 + 0 * 1024 + 1 * 32 + 2], expected.svhn.pixel_n1_c0_h1_w2);
  });
}

/** Writes an SVHN-style file and returns the path. */
async function writeSvhn(dir: string, bytes: Uint8Array, split = "train"): Promise<string> {
  const path = `${dir}/${split}_32x32.mat`;
  await Deno.writeFile(path, bytes);
  return path;
}

Deno.test("readMatV5() reads what mat-for-js reads from the same file", async () => {
  await using tmp = await tempDir();
  const { X, y } = svhnVars([1, 10, 5, 2]);
  // The same bytes as a 3072 x N matrix: mat-for-js 1.1.0 nests 2-D arrays
  // correctly but returned wrong values for the 4-D one in our check.
  const X2 = { ...X, dims: [3072, 4] };
  for (const compress of [false, true]) {
    const bytes = matBytes([y, X2], compress);
    const path = await writeSvhn(tmp.path, bytes);
    const ours = await readMatV5(path, ["X", "y"]);
    const ref = readMat(bytes.buffer as ArrayBuffer).data as Record<string, unknown>;
    assert.deepEqual([...ours.get("y")!.data], ref.y);
    assert.deepEqual(ours.get("X")!.dims, [3072, 4]);
    const refX = ref.X as number[][];
    const ourX = ours.get("X")!.data;
    for (let n = 0; n < 4; n++) {
      for (let i = 0; i < 3072; i++) assert.equal(ourX[i + 3072 * n], refX[i][n]);
    }
  }
});

Deno.test("loadDataset() converts SVHN's column-major X to NCHW", async () => {
  await using tmp = await tempDir();
  const { X, y } = svhnVars([3, 4]);
  await writeSvhn(tmp.path, matBytes([X, y], true), "test");
  const ds = await loadDataset("svhn", { root: tmp.path, split: "test" });
  for (const [n, c, h, w] of [[0, 0, 0, 1], [1, 2, 31, 0], [1, 1, 5, 17]]) {
    assert.equal(
      ds.images[n * 3072 + c * 1024 + h * 32 + w],
      X.data[h + 32 * w + 1024 * c + 3072 * n],
    );
  }
  assert.deepEqual([...ds.labels], [3, 4]);
});

Deno.test("loadDataset() rejects a truncated SVHN file", async () => {
  await using tmp = await tempDir();
  const { X, y } = svhnVars([1, 2, 3]);
  for (const compress of [false, true]) {
    const bytes = matBytes([y, X], compress);
    await writeSvhn(tmp.path, bytes.subarray(0, bytes.length - 1000));
    await assert.rejects(
      loadDataset("svhn", { root: tmp.path, split: "train" }),
      /train_32x32\.mat: (truncated MAT file|corrupt compressed element)/,
    );
  }
});

Deno.test("loadDataset() rejects corrupt compressed SVHN data", async () => {
  await using tmp = await tempDir();
  const { X, y } = svhnVars([1, 2, 3]);
  const bytes = matBytes([y, X], true);
  const bad = bytes.slice();
  for (let i = bad.length - 4000; i < bad.length - 3000; i++) bad[i] ^= 0x5a;
  await writeSvhn(tmp.path, bad);
  await assert.rejects(
    loadDataset("svhn", { root: tmp.path, split: "train" }),
    /train_32x32\.mat: (corrupt compressed element|truncated)/,
  );
});

Deno.test("loadDataset() rejects an SVHN file without y", async () => {
  await using tmp = await tempDir();
  const { X } = svhnVars([1]);
  await writeSvhn(tmp.path, matBytes([X], false));
  await assert.rejects(
    loadDataset("svhn", { root: tmp.path, split: "train" }),
    /train_32x32\.mat: no variable 'y'/,
  );
});

Deno.test("loadDataset() rejects SVHN images that are not 32x32x3xN", async () => {
  await using tmp = await tempDir();
  const { y } = svhnVars([1]);
  const X = { name: "X", dims: [28, 28, 1, 1], data: new Uint8Array(784) };
  await writeSvhn(tmp.path, matBytes([X, y], true));
  await assert.rejects(
    loadDataset("svhn", { root: tmp.path, split: "train" }),
    /'X' has dimensions 28x28x1x1, expected 32x32x3xN/,
  );
});

Deno.test("loadDataset() rejects SVHN labels that disagree with the images", async () => {
  await using tmp = await tempDir();
  const { X } = svhnVars([1, 2]);
  const y = { name: "y", dims: [3, 1], data: Float64Array.from([1, 2, 3]) };
  await writeSvhn(tmp.path, matBytes([X, y], false));
  await assert.rejects(
    loadDataset("svhn", { root: tmp.path, split: "train" }),
    /'y' has dimensions 3x1 but 'X' holds 2 images/,
  );
});

Deno.test("loadDataset() rejects an SVHN label out of range", async () => {
  await using tmp = await tempDir();
  const { X, y } = svhnVars([1, 11]);
  await writeSvhn(tmp.path, matBytes([X, y], true));
  await assert.rejects(
    loadDataset("svhn", { root: tmp.path, split: "train" }),
    /label 11 of image 1 is out of range/,
  );
});

Deno.test("loadDataset() rejects a file that is not MAT v5", async () => {
  await using tmp = await tempDir();
  await writeSvhn(tmp.path, new Uint8Array(200).fill(65));
  await assert.rejects(
    loadDataset("svhn", { root: tmp.path, split: "train" }),
    /train_32x32\.mat: not a MAT v5 file/,
  );
});

Deno.test("loadDataset() rejects a missing SVHN file and suggests a download", async () => {
  await using tmp = await tempDir();
  await assert.rejects(
    loadDataset("svhn", { root: tmp.path, split: "test" }),
    /test_32x32\.mat not found \(leave out --offline to download it\)/,
  );
});
