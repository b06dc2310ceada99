/**
 * `deno task report RUN_DIR... [--out FILE]`: the HTML report (certified-accuracy curves and
 * tables, training losses and times, predictions) of one or several pipeline runs.
 * One run is written to `RUN_DIR/report.html`, several to `./report.html`, unless `--out`.
 *
 * @module
 */
import { parseCommandLine } from "./flags.ts";
import { UsageError } from "./usage_error.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { readRunSummary, renderReport, REPORT_FILE, SummaryError } from "../report/mod.ts";
import type { ReportRun } from "../report/mod.ts";

const USAGE = `Usage: deno task report RUN_DIR... [--out FILE]\n` +
  `Writes RUN_DIR/report.html for one run, ./report.html for several, or FILE.`;

/**
 * Runs the `report` command.
 *
 * @param args the command's arguments (without "report")
 * @returns the exit code
 * @throws UsageError: exit code 2 for bad flags, 1 for a missing or malformed summary or an
 * output that cannot be written (the file is named)
 */
export async function main(args: string[]): Promise<number> {
  const parsed = parseCommandLine(args, {
    out: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  }, USAGE);
  const { values, positionals: dirs } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (dirs.length === 0) throw new UsageError(`expected at least one run directory\n${USAGE}`, 2);
  if (values.out === "") throw new UsageError("--out must not be empty", 2);

  const runs: ReportRun[] = [];
  for (const dir of dirs) {
    try {
      runs.push({ dir, summary: await readRunSummary(dir) });
    } catch (err) {
      if (err instanceof SummaryError) throw new UsageError(err.message);
      throw err;
    }
  }
  const out = values.out ??
    (dirs.length === 1 ? `${dirs[0].replace(/[\\/]+$/, "")}/${REPORT_FILE}` : REPORT_FILE);
  try {
    await writeFileAtomic(out, new TextEncoder().encode(renderReport(runs)));
  } catch (err) {
    throw new UsageError(`${out}: cannot write the report: ${(err as Error).message}`);
  }
  console.log(`wrote ${out}`);
  return 0;
}
