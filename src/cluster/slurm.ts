/**
 * A study as Slurm batch scripts (`sbatch`), and their submission: the
 * training job, the certification job array (the shard from
 * `SLURM_ARRAY_TASK_ID`) held until the training has succeeded, and the merge
 * job held until every array task has succeeded (`--dependency=afterok:`).
 *
 * @module
 */
import { InputError } from "../errors.ts";
import { INDEX, type Job, jobsOf, shellQuote, type StudyPlan } from "./plan.ts";

/** Resources asked of Slurm for every job (unset: the cluster's defaults). */
export interface SlurmOptions {
  partition?: string;
  /** GPUs per task (`--gpus-per-task`; not for the merge job, which computes nothing). */
  gpusPerTask?: number;
  cpusPerTask?: number;
  /** Time limit per job (`--time`, e.g. `4:00:00`). */
  time?: string;
}

/** One batch script and where it goes. */
export interface SlurmScript {
  job: Job;
  /** File name inside the run directory's `slurm/` folder. */
  file: string;
  text: string;
}

/** A shell word of `argv` with the array index taken from Slurm. */
function word(arg: string): string {
  if (!arg.includes(INDEX)) return shellQuote(arg);
  const [before, after] = arg.split(INDEX).map((p) => p.replace(/["$`\\]/g, "\\$&"));
  return `"${before}\${SLURM_ARRAY_TASK_ID}${after}"`;
}

/** The batch scripts of `plan`, in submission order. */
export function slurmScripts(plan: StudyPlan, o: SlurmOptions = {}): SlurmScript[] {
  const logs = `${plan.runDir}/slurm`;
  return jobsOf(plan).map((job) => {
    const array = job.count > 1 || job.argv.some((a) => a.includes(INDEX));
    const directives = [
      `--job-name=${plan.name}-${job.role}`,
      `--output=${logs}/${job.role}-${array ? "%A_%a" : "%j"}.out`,
      ...(array ? [`--array=0-${job.count - 1}`] : []),
      "--ntasks=1",
      ...(o.partition !== undefined ? [`--partition=${o.partition}`] : []),
      ...(o.cpusPerTask !== undefined ? [`--cpus-per-task=${o.cpusPerTask}`] : []),
      ...(o.gpusPerTask !== undefined && job.role !== "merge"
        ? [`--gpus-per-task=${o.gpusPerTask}`]
        : []),
      ...(o.time !== undefined ? [`--time=${o.time}`] : []),
    ];
    const text = [
      "#!/bin/bash",
      ...directives.map((d) => `#SBATCH ${d}`),
      "set -euo pipefail",
      `cd ${shellQuote(plan.root)}`,
      `exec ${job.argv.map(word).join(" ")}`,
      "",
    ].join("\n");
    return { job, file: `${job.role}.sbatch`, text };
  });
}

/** The `sbatch` command lines that submit `scripts` (job ids as `$TRAIN`, `$CERTIFY`). */
export function sbatchLines(scripts: SlurmScript[], dir: string): string[] {
  let previous: string | undefined;
  return scripts.map((s) => {
    const variable = s.job.role.toUpperCase();
    const dep = previous === undefined ? "" : ` --dependency=afterok:$${previous}`;
    previous = variable;
    return `${variable}=$(sbatch --parsable${dep} ${shellQuote(`${dir}/${s.file}`)})`;
  });
}

/**
 * Writes `scripts` into `dir` and submits them in order, each held until the one before has
 * succeeded.
 *
 * @param sbatch the sbatch program (the environment's `SLURM_CONF` is passed on)
 * @returns the job id of each script
 * @throws {InputError} when sbatch is missing or refuses a script (its message is kept)
 */
export async function submitSlurm(
  scripts: SlurmScript[],
  dir: string,
  sbatch = "sbatch",
): Promise<string[]> {
  await Deno.mkdir(dir, { recursive: true });
  const ids: string[] = [];
  for (const s of scripts) {
    const path = `${dir}/${s.file}`;
    await Deno.writeTextFile(path, s.text, { mode: 0o755 });
    const args = ["--parsable"];
    if (ids.length > 0) args.push(`--dependency=afterok:${ids.at(-1)}`);
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command(sbatch, {
        args: [...args, path],
        stdout: "piped",
        stderr: "piped",
      })
        .output();
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new InputError(
          `${sbatch}: not found (submit from a Slurm login node, or use --dry-run)`,
        );
      }
      throw e;
    }
    const text = (b: Uint8Array) => new TextDecoder().decode(b).trim();
    if (!out.success) {
      throw new InputError(
        `sbatch refused ${path}${
          ids.length > 0 ? ` (jobs ${ids.join(", ")} were submitted)` : ""
        }: ${text(out.stderr)}`,
      );
    }
    // --parsable prints "id" or "id;cluster".
    ids.push(text(out.stdout).split(";")[0]);
  }
  return ids;
}
