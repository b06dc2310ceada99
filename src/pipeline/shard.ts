/**
 * Shards of a certify or predict stage: shard i of N takes the i-th of N
 * contiguous stretches of the stage's images and leaves one part in the run
 * directory. A part is two files written atomically, the timings first and the
 * results last (the results file is the part's commit mark):
 *
 * ```
 * <run>/stages/<stage>/parts/<i>-of-<N>.part.json      results, full precision (no timings:
 *                                                      a shard run again gives the same bytes)
 * <run>/stages/<stage>/parts/<i>-of-<N>.timings.json   seconds per image, start, end, device
 * <run>/stages/<stage>/parts/<i>-of-<N>/               work files (a certify shard's journal)
 * ```
 *
 * Every image's noise is a fixed stretch of the certification stream placed by
 * its index, so an image's result does not depend on the shard that ran it.
 *
 * @module
 */
import type { DeviceSelection } from "../../compute/device.ts";
import { InputError } from "../errors.ts";
import type { JournalEntry } from "../train/journal.ts";
import type { RunDir } from "./run_dir.ts";
import { writeJson } from "./run_dir.ts";

/** Shard `index` (from 0) of `count`. */
export interface Shard {
  index: number;
  count: number;
}

/** The format name of a part's results file. */
export const PART_FORMAT = "macer-shard-part";

/**
 * `"i/N"` as a shard.
 *
 * @throws {InputError} unless 0 <= i < N are integers
 */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const shard = m ? { index: Number(m[1]), count: Number(m[2]) } : undefined;
  if (shard === undefined || shard.count < 1 || shard.index >= shard.count) {
    throw new InputError(
      `--shard ${text}: expected i/N with 0 <= i < N (e.g. 0/4 is the first of 4 shards)`,
    );
  }
  return shard;
}

/** The contiguous stretch of `items` shard `s` takes (the first ones get one fewer). */
export function shardSlice<T>(items: readonly T[], s: Shard): T[] {
  const lo = Math.floor((s.index * items.length) / s.count);
  const hi = Math.floor(((s.index + 1) * items.length) / s.count);
  return items.slice(lo, hi);
}

/** One image of a predict part. */
export interface PredictImage {
  index: number;
  label: number;
  /** The class, or -1 for an abstention. */
  prediction: number;
}

/** The results file of a part. */
export interface Part {
  format: typeof PART_FORMAT;
  version: 1;
  stage: string;
  kind: "certify" | "predict";
  shard: number;
  shards: number;
  indices: number[];
  /** Certify: journal entries without their seconds; predict: the predictions. */
  images: (Omit<JournalEntry, "seconds"> | PredictImage)[];
}

/** The timings file of a part. */
export interface PartTimings {
  started: string;
  finished: string;
  seconds: number;
  /** Seconds per image, in the order of the part's images. */
  images: number[];
  device: DeviceSelection;
}

function nameOf(s: Shard): string {
  return `${s.index}-of-${s.count}`;
}

/** Paths of a stage's parts. */
export class Parts {
  readonly dir: string;
  constructor(run: RunDir, stage: string) {
    this.dir = `${run.stage(stage)}/parts`;
  }
  results(s: Shard): string {
    return `${this.dir}/${nameOf(s)}.part.json`;
  }
  timings(s: Shard): string {
    return `${this.dir}/${nameOf(s)}.timings.json`;
  }
  work(s: Shard): string {
    return `${this.dir}/${nameOf(s)}`;
  }

  /** Whether shard `s`'s part is complete. */
  async has(s: Shard): Promise<boolean> {
    return await Deno.stat(this.results(s)).then((f) => f.isFile, () => false);
  }

  /** Writes shard `s`'s part: timings, then results. */
  async write(s: Shard, part: Part, timings: PartTimings): Promise<void> {
    await Deno.mkdir(this.dir, { recursive: true });
    await writeJson(this.timings(s), timings);
    await writeJson(this.results(s), part);
  }

  /** The shards whose parts are here (complete ones only). */
  async present(): Promise<Shard[]> {
    const found: Shard[] = [];
    try {
      for await (const e of Deno.readDir(this.dir)) {
        const m = /^(\d+)-of-(\d+)\.part\.json$/.exec(e.name);
        if (e.isFile && m) found.push({ index: Number(m[1]), count: Number(m[2]) });
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return found.sort((a, b) => a.count - b.count || a.index - b.index);
  }

  /**
   * What keeps the parts here from covering `indices` exactly once: missing parts (named
   * with the images they hold), images in two parts, parts made for other images. Empty
   * when they can be merged.
   */
  async problems(indices: readonly number[]): Promise<string[]> {
    const present = await this.present();
    if (present.length === 0) return [`no parts in ${this.dir}`];
    const problems: string[] = [];
    const owner = new Map<number, string>();
    for (const s of present) {
      const part = await this.#read(s);
      const expected = shardSlice(indices, s);
      if (JSON.stringify(part.indices) !== JSON.stringify(expected)) {
        problems.push(`${this.results(s)} holds images other than shard ${nameOf(s)}'s`);
        continue;
      }
      for (const i of part.indices) {
        const other = owner.get(i);
        if (other !== undefined) {
          problems.push(`image ${i} is in two parts: ${other} and ${this.results(s)}`);
        } else owner.set(i, this.results(s));
      }
    }
    for (const count of new Set(present.map((s) => s.count))) {
      for (let index = 0; index < count; index++) {
        const s = { index, count };
        const images = shardSlice(indices, s);
        if (present.some((p) => p.index === index && p.count === count)) continue;
        if (images.every((i) => owner.has(i))) continue;
        problems.push(
          `part ${nameOf(s)} is missing (${this.results(s)}; ${describeImages(images)})`,
        );
      }
    }
    return [...new Set(problems)];
  }

  /**
   * The images of every part, in the order of `indices`, with their seconds.
   *
   * @throws {InputError} naming every missing or duplicated part
   */
  async merged(indices: readonly number[]): Promise<Merged> {
    const problems = await this.problems(indices);
    if (problems.length > 0) {
      throw new InputError(
        `${this.dir}: the parts cannot be merged:\n${problems.map((p) => `  ${p}`).join("\n")}`,
      );
    }
    const present = await this.present();
    const byIndex = new Map<number, { image: Part["images"][number]; seconds: number }>();
    const timings: PartTimings[] = [];
    for (const s of present) {
      const part = await this.#read(s);
      const t = await readJsonFile<PartTimings>(this.timings(s));
      if (t === undefined || t.images?.length !== part.images.length) {
        throw new InputError(`${this.timings(s)}: missing or not the timings of its part`);
      }
      timings.push(t);
      part.images.forEach((image, k) => byIndex.set(image.index, { image, seconds: t.images[k] }));
    }
    return {
      images: indices.map((i) => byIndex.get(i)!),
      shards: present.length,
      seconds: timings.reduce((a, t) => a + t.seconds, 0),
      started: timings.map((t) => t.started).sort()[0],
      finished: timings.map((t) => t.finished).sort().at(-1)!,
      device: timings[0].device,
    };
  }

  async #read(s: Shard): Promise<Part> {
    const part = await readJsonFile<Part>(this.results(s));
    if (
      part === undefined || part.format !== PART_FORMAT || !Array.isArray(part.indices) ||
      !Array.isArray(part.images) || part.images.length !== part.indices.length
    ) {
      throw new InputError(`${this.results(s)}: not a complete part (format ${PART_FORMAT})`);
    }
    return part;
  }
}

/** The parts of a stage put together. */
export interface Merged {
  images: { image: Part["images"][number]; seconds: number }[];
  shards: number;
  /** Seconds of all parts together. */
  seconds: number;
  started: string;
  finished: string;
  device: PartTimings["device"];
}

function describeImages(images: readonly number[]): string {
  if (images.length === 0) return "no images";
  if (images.length === 1) return `image ${images[0]}`;
  return `${images.length} images, ${images[0]}..${images.at(-1)}`;
}

async function readJsonFile<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new InputError(`${path}: not JSON (${(e as Error).message})`);
  }
}
