import assert from "node:assert/strict";
import { DatasetError, loadDataset, readPickle } from "../../src/data/mod.ts";
import { parseCifarPickle } from "../../src/data/cifar_pickle.ts";
import { cifarBinBatch, cifarPy2Pickle } from "../../scripts/make_fake_cifar.ts";
import { md5, patternBytes, tempDir } from "./_helpers.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
const expected = JSON.parse(await Deno.readTextFile(`${FIXTURES}expected.json`));
const BATCHES = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"];

/** Writes a complete tiny binary CIFAR-10 (2 images per train batch, 3 test). */
async function writeBin(root: string) {
  const dir = `${root}/cifar-10-batches-bin`;
  await Deno.mkdir(dir, { recursive: true });
  const all: { data: Uint8Array; labels: number[] }[] = [];
  for (const [i, name] of [...BATCHES, "test_batch"].entries()) {
    const n = name === "test_batch" ? 3 : 2;
    const data = patternBytes(n * 3072, 10 + i);
    const labels = Array.from({ length: n }, (_, k) => (i + k) % 10);
    all.push({ data, labels });
    await Deno.writeFile(`${dir}/${name}.bin`, cifarBinBatch(data, labels));
  }
  return all;
}

Deno.test("loadDataset() reads CIFAR-10's binary version in batch order", async () => {
  await using tmp = await tempDir();
  const all = await writeBin(tmp.path);
  const train = await loadDataset("cifar10", { root: tmp.path, split: "train" });
  assert.equal(train.count, 10);
  assert.deepEqual([train.channels, train.height, train.width], [3, 32, 32]);
  assert.deepEqual([...train.labels], all.slice(0, 5).flatMap((b) => b.labels));
  assert.deepEqual(train.images.subarray(2 * 3072, 4 * 3072), all[1].data);
  const test = await loadDataset("cifar10", { root: tmp.path, split: "test" });
  assert.equal(test.count, 3);
  assert.deepEqual(test.images, all[5].data);
});

Deno.test("loadDataset() rejects a truncated CIFAR-10 binary batch", async () => {
  await using tmp = await tempDir();
  await writeBin(tmp.path);
  const path = `${tmp.path}/cifar-10-batches-bin/data_batch_3.bin`;
  const b = await Deno.readFile(path);
  await Deno.writeFile(path, b.subarray(0, b.length - 1));
  await assert.rejects(
    loadDataset("cifar10", { root: tmp.path, split: "train" }),
    /data_batch_3\.bin: size 6145 is not a whole number of 3073-byte records/,
  );
});

Deno.test("loadDataset() rejects a CIFAR-10 binary label out of range", async () => {
  await using tmp = await tempDir();
  await writeBin(tmp.path);
  const path = `${tmp.path}/cifar-10-batches-bin/test_batch.bin`;
  const b = await Deno.readFile(path);
  b[3073] = 12;
  await Deno.writeFile(path, b);
  await assert.rejects(
    loadDataset("cifar10", { root: tmp.path, split: "test" }),
    /test_batch\.bin: label 12 of record 1 is out of range/,
  );
});

Deno.test("loadDataset() rejects an incomplete CIFAR-10 folder", async () => {
  await using tmp = await tempDir();
  await writeBin(tmp.path);
  await Deno.remove(`${tmp.path}/cifar-10-batches-bin/data_batch_5.bin`);
  await assert.rejects(
    loadDataset("cifar10", { root: tmp.path, split: "train" }),
    (err: Error) => err instanceof DatasetError && /is complete/.test(err.message),
  );
});

Deno.test("loadDataset() reads CIFAR-10 python batches pickled by NumPy (protocol 2)", async () => {
  for (const split of ["train", "test"] as const) {
    const ds = await loadDataset("cifar10", { root: FIXTURES, split });
    assert.deepEqual([...ds.labels], expected.cifar_py[split].labels);
    assert.equal(md5(ds.images), expected.cifar_py[split].md5);
  }
});

Deno.test("parseCifarPickle() reads a batch pickled with protocol 4", async () => {
  const bytes = await Deno.readFile(`${FIXTURES}cifar_protocol4_batch`);
  const b = parseCifarPickle(bytes, "p4");
  assert.deepEqual([...b.labels], expected.cifar_py.protocol4.labels);
  assert.equal(md5(b.images), expected.cifar_py.protocol4.md5);
});

Deno.test("parseCifarPickle() reads the Python 2 cPickle layout of the real files", () => {
  const data = patternBytes(300 * 3072, 3);
  const labels = Array.from({ length: 300 }, (_, i) => i % 10);
  const b = parseCifarPickle(cifarPy2Pickle(data, labels, "training batch 1 of 5"), "py2");
  assert.deepEqual([...b.labels], labels);
  assert.deepEqual(b.images, data);
});

Deno.test("loadDataset() prefers the binary version when both are present", async () => {
  await using tmp = await tempDir();
  const all = await writeBin(tmp.path);
  await Deno.mkdir(`${tmp.path}/cifar-10-batches-py`);
  await Deno.writeFile(`${tmp.path}/cifar-10-batches-py/test_batch`, new Uint8Array(4));
  const ds = await loadDataset("cifar10", { root: tmp.path, split: "test" });
  assert.deepEqual(ds.images, all[5].data);
});

/** A pickle calling os.system: must be refused, never run. */
const MALICIOUS = new Uint8Array([
  0x80,
  0x02,
  ...new TextEncoder().encode("cos\nsystem\n"),
  0x55,
  0x04,
  ...new TextEncoder().encode("true"),
  0x85,
  0x52,
  0x2e,
]);

Deno.test("readPickle() refuses globals outside the NumPy whitelist", () => {
  assert.throws(() => readPickle(MALICIOUS), /refusing global os\.system at byte 2/);
});

Deno.test("loadDataset() rejects a CIFAR-10 python batch holding a malicious pickle", async () => {
  await using tmp = await tempDir();
  const dir = `${tmp.path}/cifar-10-batches-py`;
  await Deno.mkdir(dir);
  await Deno.writeFile(`${dir}/test_batch`, MALICIOUS);
  await assert.rejects(
    loadDataset("cifar10", { root: tmp.path, split: "test" }),
    /test_batch: refusing global os\.system/,
  );
});

Deno.test("readPickle() refuses unsupported opcodes", () => {
  // PROTO 2, then INST ('i'), which this reader does not implement.
  assert.throws(
    () => readPickle(new Uint8Array([0x80, 0x02, 0x69, 0x2e])),
    /unsupported pickle opcode 0x69 at byte 2/,
  );
});

Deno.test("parseCifarPickle() rejects a truncated pickle", () => {
  const full = cifarPy2Pickle(patternBytes(2 * 3072), [1, 2], "b");
  assert.throws(
    () => parseCifarPickle(full.subarray(0, 2000), "data_batch_1"),
    /data_batch_1: truncated pickle/,
  );
});

Deno.test("parseCifarPickle() rejects an array whose shape disagrees with its bytes", () => {
  const three = cifarPy2Pickle(patternBytes(3 * 3072), [1, 2, 3], "b");
  const mutated = three.slice();
  // The shape tuple's row count (BININT1 3) follows "MARK BININT1 1": patch it to 2.
  const at = mutated.findIndex((b, i) =>
    b === 0x28 && mutated[i + 1] === 0x4b && mutated[i + 2] === 1 && mutated[i + 3] === 0x4b
  );
  mutated[at + 4] = 2;
  assert.throws(() => parseCifarPickle(mutated, "bad"), /bad: ndarray data holds 9216 bytes/);
});

Deno.test("parseCifarPickle() rejects a label out of range", () => {
  const bytes = cifarPy2Pickle(patternBytes(2 * 3072), [1, 11], "b");
  assert.throws(() => parseCifarPickle(bytes, "b1"), /b1: label 11 of image 1 is out of range/);
});
