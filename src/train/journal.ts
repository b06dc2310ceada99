/**
 * The journal of a certification run: one JSON line per finished image with
 * its full-precision results, appended as each image finishes. A run killed
 * at any moment leaves the images before it here, so certifying again with
 * the same journal continues after them and ends with the same results as an
 * uninterrupted run (the TSV logs keep Cohen's 3-digit radii; this keeps them
 * all).
 *
 * @module
 */
import type { Certificate } from "../smoothing/certify.ts";

/** One finished image. */
export interface JournalEntry {
  index: number;
  label: number;
  certificates: Partial<Record<"hard" | "soft", Pick<Certificate, "prediction" | "radius">>>;
  seconds: number;
}

/**
 * The entries of a journal that match the start of `indices`, dropping a last
 * line cut short by a kill; the file is rewritten to hold exactly them.
 *
 * @param path the journal file (missing: none done)
 * @param indices the images of the run, in order
 * @throws {Error} when the journal belongs to another run (other images in another order)
 */
export async function readJournal(
  path: string,
  indices: readonly number[],
): Promise<JournalEntry[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  const entries: JournalEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    let e: JournalEntry;
    try {
      e = JSON.parse(line);
    } catch {
      break; // a line cut short: everything before it is whole
    }
    if (e.index !== indices[entries.length]) {
      throw new Error(
        `${path} holds image ${e.index} where this run certifies image ${
          indices[entries.length]
        }: it belongs to another run`,
      );
    }
    entries.push(e);
  }
  await Deno.writeTextFile(path, entries.map((e) => JSON.stringify(e) + "\n").join(""));
  return entries;
}

/** Appends one finished image. */
export async function appendJournal(path: string, e: JournalEntry): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(e) + "\n", { append: true });
}
