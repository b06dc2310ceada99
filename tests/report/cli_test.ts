import assert from "node:assert/strict";
import { main } from "../../src/cli/report.ts";
import { UsageError } from "../../src/cli/usage_error.ts";
import { exampleSummary, runDir } from "./_summaries.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

async function withRuns(n: number, fn: (dirs: string[]) => Promise<void>): Promise<void> {
  const dirs = await Promise.all(
    Array.from({ length: n }, (_, i) => runDir(exampleSummary(`run-${i}`))),
  );
  try {
    await fn(dirs);
  } finally {
    for (const d of dirs) await Deno.remove(d, { recursive: true });
  }
}

function usageError(code: number, message: RegExp) {
  return (e: Error) => e instanceof UsageError && e.exitCode === code && message.test(e.message);
}

Deno.test("report main() writes RUN_DIR/report.html for one run, FILE with --out", async () => {
  await withRuns(2, async ([a, b]) => {
    assert.equal(await main([a]), 0);
    assert.match(await Deno.readTextFile(`${a}/report.html`), /<h1>MACER report: run-0<\/h1>/);
    assert.equal(await main([a, b, "--out", `${b}/both.html`]), 0);
    assert.match(await Deno.readTextFile(`${b}/both.html`), /<h1>MACER report: run-0, run-1<\/h1>/);
  });
});

Deno.test("report main() names the file of a missing or malformed summary", async () => {
  await withRuns(1, async ([a]) => {
    const empty = await Deno.makeTempDir();
    try {
      await assert.rejects(
        () => main([a, empty]),
        usageError(1, new RegExp(`^${empty}/summary\\.json: no such file`)),
      );
      await Deno.writeTextFile(
        `${a}/summary.json`,
        JSON.stringify({ format: "macer-pipeline-summary", version: 7 }),
      );
      await assert.rejects(
        () => main([a]),
        usageError(1, new RegExp(`^${a}/summary\\.json: version: expected 1, got 7`)),
      );
      await Deno.writeTextFile(`${a}/summary.json`, JSON.stringify({ format: "csv" }));
      await assert.rejects(
        () => main([a]),
        usageError(1, new RegExp(`^${a}/summary\\.json: format: expected`)),
      );
      await assert.rejects(() => Deno.stat(`${a}/report.html`), Deno.errors.NotFound);
    } finally {
      await Deno.remove(empty, { recursive: true });
    }
  });
});

Deno.test("report main() refuses bad flags with exit code 2 and an unwritable output with its name", async () => {
  await assert.rejects(() => main([]), usageError(2, /expected at least one run directory/));
  await assert.rejects(() => main(["x", "--bogus"]), usageError(2, /bogus/));
  await assert.rejects(() => main(["x", "--out", ""]), usageError(2, /--out must not be empty/));
  await withRuns(1, async ([a]) => {
    const out = `${a}/no/such/dir/r.html`;
    await assert.rejects(
      () => main([a, "--out", out]),
      usageError(1, new RegExp(`^${out}: cannot write the report`)),
    );
  });
});

Deno.test("deno task report: several runs go to ./report.html; errors print without a stack trace", async () => {
  await withRuns(2, async ([a, b]) => {
    const cwd = await Deno.makeTempDir();
    try {
      const run = (args: string[]) =>
        new Deno.Command(Deno.execPath(), {
          args: ["run", "--allow-all", CLI, "report", ...args],
          cwd,
          stdin: "null",
        })
          .output();
      const ok = await run([a, b]);
      assert.equal(ok.code, 0, new TextDecoder().decode(ok.stderr));
      assert.match(await Deno.readTextFile(`${cwd}/report.html`), /run-0, run-1/);
      const bad = await run([cwd]);
      const stderr = new TextDecoder().decode(bad.stderr);
      assert.equal(bad.code, 1);
      assert.equal(stderr, `error: ${cwd}/summary.json: no such file (is this a run directory?)\n`);
    } finally {
      await Deno.remove(cwd, { recursive: true });
    }
  });
});
