/**
 * `manifest.json`: what produced a run (program, Deno and library versions,
 * git commit when there is one, SIMD level), with what (seed, device,
 * threads), and when (start, end, seconds per stage and epoch). Timings live
 * here, not in summary.json, so that reruns give a bit-identical summary.
 *
 * @module
 */
import { simdLevel, threads } from "../../compute/tensor.ts";
import config from "../../deno.json" with { type: "json" };
import type { RunDir } from "./run_dir.ts";
import { writeJson } from "./run_dir.ts";
import type { Timings } from "./runner.ts";
import type { DeviceSelection } from "../../compute/device.ts";
import type { Pipeline } from "./validate.ts";

/** The commit of the program's checkout, or null outside a git checkout. */
async function gitCommit(): Promise<string | null> {
  try {
    const dir = new URL("../..", import.meta.url).pathname;
    const out = await new Deno.Command("git", {
      args: ["-C", dir, "rev-parse", "HEAD"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

/** Writes the run's manifest. */
export async function writeManifest(
  dir: RunDir,
  p: Pipeline,
  run: { started: Date; finished: Date; timings: Timings; device: DeviceSelection },
): Promise<void> {
  await writeJson(dir.manifest, {
    format: "macer-run-manifest",
    version: 1,
    program: { name: config.name, version: config.version, commit: await gitCommit() },
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    library: { simd: simdLevel(), threads: threads() },
    pipeline: p.name,
    seed: p.seed,
    device: { asked: p.device, used: run.device.device, adapter: run.device.adapter ?? null },
    started: run.started.toISOString(),
    finished: run.finished.toISOString(),
    seconds: (run.finished.getTime() - run.started.getTime()) / 1000,
    stages: run.timings,
  });
}
