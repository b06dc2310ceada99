/**
 * From a pipeline file and command-line overrides to the validated runs:
 * `extends` merged, `--set` applied, the `matrix` expanded, every run
 * validated, and every problem of every run reported at once.
 *
 * @module
 */
import { InputError } from "../errors.ts";
import type { Problem } from "../spec/spec.ts";
import { applySets, expandMatrix, loadComposed } from "./compose.ts";
import { type Pipeline, PipelineError, validatePipeline } from "./validate.ts";

/** One run of a pipeline file. */
export interface PlannedRun {
  pipeline: Pipeline;
  /** Matrix values of this run (`sigma=0.5,lbd=4`), empty without a matrix. */
  label: string;
  /** Folder name of this run inside the run directory of a matrix, "" without one. */
  folder: string;
}

/** `sigma=0.5,stages[0].lbd=4` -> `sigma-0.5_stages0.lbd-4`: safe as a folder name. */
export function folderOf(label: string): string {
  return label.replace(/=/g, "-").replace(/,/g, "_").replace(/[^A-Za-z0-9._-]/g, "");
}

/** A pipeline file named by path, or by bare name from the shipped `pipelines/` folder. */
export async function locatePipeline(name: string): Promise<string> {
  const isFile = async (p: string) => {
    try {
      return (await Deno.stat(p)).isFile;
    } catch {
      return false;
    }
  };
  if (await isFile(name)) return name;
  const shipped = new URL(`../../pipelines/${name}`, import.meta.url).pathname;
  if (!name.includes("/") && await isFile(shipped)) return shipped;
  if (!name.endsWith(".json") && !name.includes("/") && await isFile(`${shipped}.json`)) {
    return `${shipped}.json`;
  }
  throw new InputError(
    `${name}: no such pipeline file (nor in ${
      new URL("../../pipelines/", import.meta.url).pathname
    })`,
  );
}

/**
 * Every run a pipeline file describes, validated.
 *
 * @param file the pipeline file
 * @param sets `path=value` overrides, applied after `extends` and before the matrix
 * @param checkFiles also check that data and checkpoint files exist
 * @returns the pipeline's name and its runs (one per matrix combination)
 * @throws {PipelineError} listing every problem of every run; {InputError} for unreadable files
 */
export async function planRuns(
  file: string,
  sets: readonly string[] = [],
  checkFiles = true,
): Promise<{ name: string; runs: PlannedRun[] }> {
  const composed = applySets(await loadComposed(file), sets);
  const name = typeof composed.name === "string" ? composed.name : "run";
  const runs: PlannedRun[] = [];
  const problems: Problem[] = [];
  const seen = new Set<string>();
  for (const e of expandMatrix(composed)) {
    if (e.label !== "" && typeof e.doc.name === "string") {
      e.doc.name = `${e.doc.name}-${folderOf(e.label)}`;
    }
    try {
      const pipeline = await validatePipeline(e.doc, file, checkFiles);
      runs.push({ pipeline, label: e.label, folder: folderOf(e.label) });
    } catch (err) {
      if (!(err instanceof PipelineError)) throw err;
      for (const p of err.problems) {
        const key = `${p.path}\u0000${p.message}`;
        if (seen.has(key)) continue; // the same problem in every combination: say it once
        seen.add(key);
        problems.push(e.label === "" ? p : { ...p, message: `${p.message} (matrix: ${e.label})` });
      }
    }
  }
  if (problems.length > 0) throw new PipelineError(file, problems);
  return { name, runs };
}
