/**
 * `deno task merge RUN_DIR...`: joins the parts that shard runs (`deno task pipeline FILE
 * --shard I/N`) left in a run directory into the files a single-process run writes, then
 * writes summary.json, manifest.json and the report. Exit code 0 when merged and every
 * expectation held, 1 when a part is missing or duplicated (each named) or an expectation
 * failed, 2 for bad flags.
 *
 * @module
 */
import { mergeRun } from "../pipeline/sharded.ts";
import { parseCommandLine } from "./flags.ts";
import { UsageError } from "./usage_error.ts";

const USAGE = `Usage: deno task merge RUN_DIR...
Joins the parts of a sharded run (deno task pipeline FILE --out RUN_DIR --shard I/N) into the
files a single-process run writes: TSV logs in image order, .mat radii, summary.json, report.`;

/**
 * Runs the `merge` command.
 *
 * @param args the command's arguments (without "merge")
 * @returns the exit code
 */
export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(args, {
    help: { type: "boolean", short: "h" },
  }, "(see --help)");
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError(`expected a run directory\n${USAGE}`, 2);
  let failures = 0;
  for (const dir of positionals) {
    const outcome = await mergeRun(dir, { events: { log: (line) => console.log(line) } });
    for (const f of outcome.failed) console.error(`error: expectation not met: ${f}`);
    failures += outcome.failed.length;
    console.log(`run directory: ${outcome.dir}`);
  }
  return failures > 0 ? 1 : 0;
}
