/**
 * `deno task pipeline FILE [--set path=value]... [--out DIR] [--dry-run] [--force]
 * [--combination K] [--train-only] [--shard I/N]`:
 * runs a pipeline file (a path, or a bare name from `pipelines/`). A matrix
 * runs one combination after another, each in a folder of the run directory
 * (or the K-th alone). `--train-only` runs the train stages; `--shard I/N`
 * certifies the I-th of N stretches of every certify and predict stage's
 * images, and merges the run when every part is there.
 * Exit code 0 when every run finished and met its expectations, 1 when an
 * expectation failed or the input was unusable, 2 for bad flags.
 *
 * @module
 */
import { locatePipeline, planRuns } from "../pipeline/load.ts";
import { type Progress, runPipeline } from "../pipeline/runner.ts";
import { defaultRunDir } from "../pipeline/run_dir.ts";
import { parseShard, type Shard } from "../pipeline/shard.ts";
import { runShard } from "../pipeline/sharded.ts";
import { InputError } from "../errors.ts";
import { progressBar, progressLine, throttle } from "./progress.ts";
import { parseCommandLine } from "./flags.ts";
import { UsageError } from "./usage_error.ts";

const USAGE = `Usage: deno task pipeline FILE [flags]
Runs a pipeline: dataset, model, training and certification stages, report.
FILE is a path, or the name of a file in pipelines/ (e.g. mnist-quickstart.json).

  --set PATH=VALUE  override a field (e.g. --set stages[0].epochs=2); VALUE is JSON where it parses
  --out DIR         the run directory (default runs/<name>-<time>); running again into it resumes
  --dry-run         print the resolved runs and stop
  --force           take over a run directory written by another pipeline
  --combination K   run the K-th combination of the matrix alone (from 0; one array task each)
  --train-only      run the train stages only (the job before the shards)
  --shard I/N       run shard I (from 0) of N of every certify and predict stage: the I-th of N
                    contiguous stretches of its images; the train stages must have finished in
                    --out; merges the run when every part is there (else: deno task merge DIR)
  -h, --help        show this help`;

function bad(msg: string): never {
  throw new UsageError(`${msg}\n(see --help)`, 2);
}

/** Renders progress events: a live bar on a terminal, a line every 30 s elsewhere. */
function progressPrinter(): (p: Progress) => void {
  const tty = Deno.stderr.isTerminal();
  const show = throttle(tty ? 200 : 30_000);
  return (p) => {
    const last = p.done === p.total;
    if (!show(last) || (last && !tty && p.unit === "step")) return;
    progressLine(`${p.stage}: ${progressBar(p.done, p.total, p.seconds, p.unit)}  ${p.detail}`);
    if (tty && last) progressLine("", false);
  };
}

/**
 * Runs the `pipeline` command.
 *
 * @param args the command's arguments (without "pipeline")
 * @returns the exit code
 */
export async function main(args: string[]): Promise<number> {
  const parsed = parseCommandLine(args, {
    set: { type: "string", multiple: true },
    out: { type: "string" },
    "dry-run": { type: "boolean" },
    force: { type: "boolean" },
    shard: { type: "string" },
    combination: { type: "string" },
    "train-only": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, "(see --help)");
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1) bad("expected one pipeline file");
  let shard: Shard | undefined;
  try {
    shard = values.shard === undefined ? undefined : parseShard(values.shard);
  } catch (e) {
    if (e instanceof InputError) bad(e.message);
    throw e;
  }
  if (shard !== undefined && values["train-only"]) {
    bad("--shard and --train-only exclude each other");
  }
  const combination = values.combination === undefined ? undefined : Number(values.combination);
  if (combination !== undefined && !(Number.isInteger(combination) && combination >= 0)) {
    bad(`--combination ${values.combination}: expected an integer >= 0`);
  }
  if (values.out === "") bad("--out must not be empty");
  const file = await locatePipeline(positionals[0]);
  // A dry run shows what would run; it does not need the data to be there yet.
  const { name, runs } = await planRuns(file, values.set ?? [], !values["dry-run"]);
  const base = values.out ?? defaultRunDir(name);
  if (shard !== undefined && values.out === undefined) {
    bad("--shard needs --out: every shard writes its part into the same run directory");
  }
  if (combination !== undefined) {
    if (combination >= runs.length) {
      bad(`--combination ${combination}: the pipeline has ${runs.length} (0..${runs.length - 1})`);
    }
    runs.splice(0, runs.length, runs[combination]);
  }
  if (values["dry-run"]) {
    for (const r of runs) {
      const dir = r.folder === "" ? base : `${base}/${r.folder}`;
      console.log(
        JSON.stringify({ dir, matrix: r.label || undefined, pipeline: r.pipeline }, null, 2),
      );
    }
    return 0;
  }
  const progress = progressPrinter();
  let failures = 0;
  for (const r of runs) {
    const dir = r.folder === "" ? base : `${base}/${r.folder}`;
    const events = { log: (line: string) => console.log(line), progress };
    const force = values.force ?? false;
    if (shard !== undefined) {
      const { merged } = await runShard(r.pipeline, dir, shard, { force, events });
      if (merged === null) {
        console.log(`part ${shard.index}/${shard.count} written in ${dir}`);
        continue;
      }
      for (const f of merged.failed) console.error(`error: expectation not met: ${f}`);
      failures += merged.failed.length;
      console.log(`run directory: ${merged.dir}`);
      continue;
    }
    const outcome = await runPipeline(r.pipeline, dir, {
      force,
      events,
      trainOnly: values["train-only"] ?? false,
    });
    for (const f of outcome.failed) console.error(`error: expectation not met: ${f}`);
    failures += outcome.failed.length;
    console.log(`run directory: ${outcome.dir}`);
  }
  return failures > 0 ? 1 : 0;
}
