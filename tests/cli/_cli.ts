/**
 * Runs `cli.ts` as a child process, as a user would, and writes small
 * generated datasets in the real files' formats.
 *
 * @module
 */
import { matBytes, patternBytes, svhnVars } from "../data/_helpers.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;
/** The repository root. */
export const ROOT = new URL("../../", import.meta.url).pathname;

/** What a child process did. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `deno run --allow-all cli.ts ...args` in the repository root.
 *
 * @param args the command and its flags
 * @param env extra environment variables
 */
export async function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", CLI, ...args],
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** True when stderr holds a JavaScript stack trace. */
export function hasStackTrace(stderr: string): boolean {
  return /^\s+at .*(:\d+:\d+\)?|<anonymous>)$/m.test(stderr) ||
    /Uncaught|Stack backtrace/.test(stderr);
}

/** CIFAR-10 binary records (label byte + 3,072 pixel bytes) of `labels`. */
export function cifarRecords(labels: number[], seed: number): Uint8Array {
  const pixels = patternBytes(3072 * labels.length, seed);
  const out = new Uint8Array(3073 * labels.length);
  labels.forEach((label, i) => {
    out[3073 * i] = label;
    out.set(pixels.subarray(3072 * i, 3072 * (i + 1)), 3073 * i + 1);
  });
  return out;
}

/**
 * Writes `<root>/cifar-10-batches-bin/` with `train` images in data_batch_1
 * (one more in each of batches 2 to 5) and `test` images in test_batch.
 */
export async function writeCifar10(root: string, train: number, test: number): Promise<void> {
  const dir = `${root}/cifar-10-batches-bin`;
  await Deno.mkdir(dir, { recursive: true });
  const labels = (n: number, shift: number) =>
    Array.from({ length: n }, (_, i) => (3 * i + shift) % 10);
  await Deno.writeFile(`${dir}/data_batch_1.bin`, cifarRecords(labels(train, 0), 1));
  for (const b of [2, 3, 4, 5]) {
    await Deno.writeFile(`${dir}/data_batch_${b}.bin`, cifarRecords(labels(1, b), b));
  }
  await Deno.writeFile(`${dir}/test_batch.bin`, cifarRecords(labels(test, 1), 9));
}

/** Writes SVHN's `train_32x32.mat` and `test_32x32.mat` (labels 1 to 10) into `root`. */
export async function writeSvhn(root: string, train: number, test: number): Promise<void> {
  await Deno.mkdir(root, { recursive: true });
  for (
    const [file, n, seed] of [["train_32x32.mat", train, 3], ["test_32x32.mat", test, 4]] as const
  ) {
    const { X, y } = svhnVars(Array.from({ length: n }, (_, i) => (i % 10) + 1), seed);
    await Deno.writeFile(`${root}/${file}`, matBytes([X, y], true));
  }
}
