/**
 * The compute library's unit tests at every SIMD level this CPU has
 * (`MACER_SIMD=avx512`, `avx2`, `portable`), so that the AVX2 and portable
 * paths are tested on an AVX-512 machine too. Below AVX-512 the tests of
 * AVX-512 kernels (named `avx512_*`) are skipped by name, with the reason
 * printed: their kernels do not run at those levels. Exits with the first
 * failing run's status.
 *
 * `deno run -A scripts/rust_tests.ts [-- TEST_FILTER...]`
 *
 * @module
 */
import { cpuSimdLevels } from "../compute/device.ts";

const levels = cpuSimdLevels();
const cpu = levels[0];
const extra = Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args;

for (const level of levels) {
  const args = [
    "test",
    "--release",
    "--quiet",
    "--lib",
    "--manifest-path",
    new URL("../compute/Cargo.toml", import.meta.url).pathname,
    "--",
    "--format",
    "pretty",
    ...extra,
  ];
  let note = "";
  if (level !== "avx512") {
    args.push("--skip", "avx512_");
    note = cpu === "avx512"
      ? "; the tests of AVX-512 kernels (avx512_*) are skipped: those kernels do not run at this level"
      : "";
  }
  console.log(`Rust kernel tests at SIMD level ${level} (MACER_SIMD=${level}${note})`);
  const run = await new Deno.Command("cargo", {
    args,
    env: { MACER_SIMD: level },
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!run.success) Deno.exit(run.code || 1);
}
