/**
 * `deno task data NAME [--root DIR] [--split train|test] [--download]`:
 * loads a dataset and prints a one-line JSON summary
 * (`count, shape, classes, label_counts, min, max, mean`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { UsageError } from "./usage_error.ts";
import { DATASET_NAMES, DEFAULT_ROOT, isDatasetName, loadDataset, summarize } from "../data/mod.ts";

const USAGE = `Usage: deno task data NAME [--root DIR] [--split train|test] [--download] ` +
  `[--base-url URL]\nNAME: ${DATASET_NAMES.join(", ")}`;

/**
 * Runs the `data` command.
 *
 * @param args the command's arguments (without "data")
 * @returns the exit code
 * @throws UsageError (exit code 2) on unknown flags or bad values
 */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        root: { type: "string" },
        split: { type: "string", default: "train" },
        download: { type: "boolean", default: false },
        "base-url": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${USAGE}`, 2);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new UsageError(`expected one dataset name, got ${positionals.length}\n${USAGE}`, 2);
  }
  const name = positionals[0];
  if (!isDatasetName(name)) {
    throw new UsageError(`unknown dataset "${name}"\n${USAGE}`, 2);
  }
  const split = values.split;
  if (split !== "train" && split !== "test") {
    throw new UsageError(`--split must be train or test, got "${split}"`, 2);
  }
  if (values.root === "") throw new UsageError(`--root must not be empty`, 2);
  const ds = await loadDataset(name, {
    root: values.root ?? DEFAULT_ROOT,
    split,
    download: values.download,
    baseUrl: values["base-url"],
  });
  console.log(JSON.stringify(summarize(ds)));
  return 0;
}
