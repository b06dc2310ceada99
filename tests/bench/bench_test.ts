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
    "--device",
    "cpu",
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
  for (const args of [["--case", "nope"], ["--reps", "0"], ["--device", "tpu"], ["--bogus"]]) {
    const r = await bench(...args);
    assert.equal(r.code, 2, args.join(" "));
    assert.match(r.stderr, /error: /);
  }
});

/** True when /usr/bin/python3 can import torch (Debian's python3-torch). */
function hasTorch(): boolean {
  try {
    return new Deno.Command("/usr/bin/python3", {
      args: ["-c", "import torch"],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
}

Deno.test({
  name:
    "bench --torch times the repository's PyTorch reference after each case (needs python3-torch)",
  ignore: !hasTorch() && Deno.env.get("CI") !== "true",
  fn: async () => {
    const r = await bench(
      ...["--case", "certify-lenet", "--reps", "1", "--threads", "1", "--device", "cpu", "--torch"],
    );
    assert.equal(r.code, 0, r.stderr);
    const [header, line] = r.stdout.trim().split("\n");
    assert.match(header, /^device: cpu, cpu (avx512|avx2\+fma|sse2|neon|portable), 1 threads$/);
    assert.match(
      line,
      /^certify-lenet +[\d.]+ ms +\d+ items\/s +[\d.]+ GFLOP\/s {2}PyTorch [\d.]+ ms -> [\d.]+x$/,
    );
    const json = await bench("--json", "--case", "certify-lenet", "--reps", "1", "--torch");
    assert.equal(json.code, 0, json.stderr);
    const row = JSON.parse(json.stdout);
    assert.ok(row.torch_ms > 0 && row.speedup > 0, json.stdout);
    assert.equal(row.speedup, Math.round((row.torch_ms / row.ms) * 100) / 100);
  },
});

Deno.test("bench --torch says on stderr why the reference did not run", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/broken.py`;
    await Deno.writeTextFile(script, "raise SystemExit('no reference here')\n");
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", main, "--case", "certify-lenet", "--reps", "1", "--torch"],
      env: { MACER_TORCH_BENCH: script },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.match(stdout, /^device: .*\ncertify-lenet .* GFLOP\/s\n$/);
    assert.match(
      stderr,
      /note: no PyTorch time for certify-lenet: .*broken\.py failed: no reference here/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "the baselines' bench cases run on both sides under the same names (needs python3-torch)",
  ignore: !hasTorch() && Deno.env.get("CI") !== "true",
  fn: async () => {
    const py = new Deno.Command("/usr/bin/python3", {
      args: [
        "-c",
        "import sys; sys.path.insert(0, 'bench'); import torch_bench as t; print(' '.join(t.CASES))",
      ],
      cwd: new URL("../..", import.meta.url).pathname,
      stdout: "piped",
    }).outputSync();
    const torchCases = new TextDecoder().decode(py.stdout).trim().split(" ").sort();
    const methods = ["gaussian", "consistency", "smoothadv", "smoothmix"];
    for (const m of methods) {
      assert.ok(torchCases.includes(`train-step-${m}-lenet`), m);
      assert.ok(torchCases.includes(`train-step-${m}-resnet110`), m);
    }
    const r = await bench(
      ...["--json", "--case", "train-step-consistency-lenet", "--reps", "1", "--device", "cpu"],
      "--torch",
    );
    assert.equal(r.code, 0, r.stderr);
    const row = JSON.parse(r.stdout);
    assert.equal(row.case, "train-step-consistency-lenet");
    assert.ok(row.ms > 0 && row.torch_ms > 0, r.stdout);
  },
});
