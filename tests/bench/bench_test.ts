/** The benchmark command's output format and flag checks (not its timings). */
import assert from "node:assert/strict";

const main = new URL("../../bench/main.ts", import.meta.url).pathname;

async function bench(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", main, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("bench --json prints one object per case with case, ms, items_per_s, device, adapter", async () => {
  const r = await bench(
    "--json",
    "--case",
    "certify-lenet",
    "--case",
    "train-step-lenet",
    "--reps",
    "1",
  );
  assert.equal(r.code, 0, r.stderr);
  const rows = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(rows.map((x) => x.case), ["certify-lenet", "train-step-lenet"]);
  for (const row of rows) {
    assert.ok(row.ms > 0 && row.items_per_s > 0, JSON.stringify(row));
    assert.equal(row.device, "cpu");
    assert.match(row.adapter, /^cpu \(\d+ threads, /);
  }
});

Deno.test("bench refuses an unknown case or flag, a bad --reps and an unavailable device", async () => {
  for (const args of [["--case", "nope"], ["--reps", "0"], ["--device", "gpu"], ["--bogus"]]) {
    const r = await bench(...args);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.stderr, /error: /);
  }
});
