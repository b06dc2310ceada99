/**
 * Compares a merged (sharded) run directory with a single-process run of the
 * same pipeline: the same files (the merged one also keeps its parts), each
 * byte-identical, except what holds measured times or the clock:
 *
 * - Cohen's TSV logs: the `time` column (the rest of every line is compared);
 * - the journal: each line's `seconds`;
 * - `<stage>.summary.json`: `timings`;
 * - the `.mat` files: the 116-byte text header, which holds the creation date
 *   (the data after it is compared byte for byte);
 * - `manifest.json` and `log.txt`, which record times and what was printed;
 * - `slurm/`: the batch scripts and job logs of a run submitted to Slurm.
 *
 * @module
 */
import assert from "node:assert/strict";
import { tree } from "./_pipeline.ts";

/** Files of a run directory compared (the merged run's parts and the clock's files aside). */
async function compared(dir: string): Promise<string[]> {
  const skip = (f: string) =>
    f === "manifest.json" || f === "log.txt" || /(^|\/)parts(\/|$)/.test(f) ||
    /^slurm(\/|$)/.test(f);
  const files: string[] = [];
  for (const f of await tree(dir)) {
    if (!skip(f) && (await Deno.stat(`${dir}/${f}`)).isFile) files.push(f);
  }
  return files;
}

const MAT_HEADER = 116;

/** The file's bytes with its measured times and dates taken out (see the module's list). */
async function timeless(path: string): Promise<Uint8Array> {
  const bytes = await Deno.readFile(path);
  const text = () => new TextDecoder().decode(bytes);
  const encode = (s: string) => new TextEncoder().encode(s);
  if (path.endsWith(".mat")) return bytes.subarray(MAT_HEADER);
  if (path.endsWith(".tsv")) {
    return encode(text().split("\n").map((l) => l.split("\t").slice(0, -1).join("\t")).join("\n"));
  }
  if (path.endsWith(".journal.jsonl") || path.endsWith("epochs.jsonl")) {
    return encode(
      text().split("\n").filter((l) => l !== "").map((l) => {
        const { seconds: _s, ...rest } = JSON.parse(l);
        return JSON.stringify(rest);
      }).join("\n"),
    );
  }
  if (path.endsWith(".summary.json")) {
    const { timings: _t, ...rest } = JSON.parse(text());
    return encode(JSON.stringify(rest, null, 2));
  }
  return bytes;
}

/** Whether a file holds measured times (compared without them). */
export function holdsTimes(file: string): boolean {
  return /\.(mat|tsv|journal\.jsonl|summary\.json)$/.test(file) || file.endsWith("epochs.jsonl");
}

/**
 * Asserts that `merged` holds the files of `single`, each byte-identical, apart from the
 * measured times listed in the module's comment.
 *
 * @returns the number of files compared and how many of them byte for byte in full
 */
export async function assertSameRun(
  single: string,
  merged: string,
): Promise<{ files: number; whole: number }> {
  const a = await compared(single);
  const b = await compared(merged);
  assert.deepEqual(b, a, `${merged} holds other files than ${single}`);
  let whole = 0;
  for (const f of a) {
    const [x, y] = [await timeless(`${single}/${f}`), await timeless(`${merged}/${f}`)];
    assert.ok(
      x.length === y.length && x.every((v, i) => v === y[i]),
      `${f} differs between ${single} and ${merged}`,
    );
    if (!holdsTimes(f)) whole++;
  }
  return { files: a.length, whole };
}
