/**
 * `deno task data NAME [--root DIR] [--split train|test] [--offline] [--base-url URL]`:
 * loads a dataset and prints a one-line JSON summary
 * (`count, shape, classes, label_counts, min, max, mean`).
 *
 * Downloads are asked for as in `deno task macer`: missing files are fetched
 * unless `--offline`; `--download` (the default) is accepted for older scripts.
 *
 * @module
 */
import { parseCommandLine } from "./flags.ts";
import { UsageError } from "./usage_error.ts";
import { DATASET_NAMES, DEFAULT_ROOT, isDatasetName, loadDataset, summarize } from "../data/mod.ts";

const USAGE = `Usage: deno task data NAME [--root DIR] [--split train|test] [--offline] ` +
  `[--base-url URL]\nNAME: ${DATASET_NAMES.join(", ")}\n` +
  `Missing files are downloaded (--download, the default) unless --offline.`;

/**
 * Runs the `data` command.
 *
 * @param args the command's arguments (without "data")
 * @returns the exit code
 * @throws UsageError (exit code 2) on unknown flags or bad values
 */
export async function main(args: string[]): Promise<number> {
  const parsed = parseCommandLine(args, {
    root: { type: "string" },
    split: { type: "string", default: "train" },
    download: { type: "boolean", default: false },
    offline: { type: "boolean", default: false },
    "base-url": { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  }, USAGE);
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
  if (name === "imagenet" && split !== "test") {
    throw new UsageError("imagenet has only its validation images here: give --split test", 2);
  }
  if (values.root === "") throw new UsageError(`--root must not be empty`, 2);
  if (values.offline && values.download) {
    throw new UsageError("--download and --offline contradict each other", 2);
  }
  const baseUrl = values["base-url"];
  if (values.offline && baseUrl !== undefined) {
    throw new UsageError("--base-url has no use with --offline", 2);
  }
  if (baseUrl !== undefined && !/^https?:\/\/./.test(baseUrl)) {
    throw new UsageError(`--base-url must be an http:// or https:// address, got "${baseUrl}"`, 2);
  }
  const ds = await loadDataset(name, {
    root: values.root ?? DEFAULT_ROOT,
    split,
    download: !values.offline,
    baseUrl,
  });
  console.log(JSON.stringify(summarize(ds)));
  return 0;
}
