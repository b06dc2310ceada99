/**
 * The run directory: where a pipeline run keeps everything, laid out so that
 * running again into it resumes.
 *
 * ```
 * <run>/pipeline.json            the resolved pipeline (a different one is refused)
 * <run>/manifest.json            versions, commit, seed, device, times
 * <run>/log.txt                  what the run printed
 * <run>/stages/<stage>/          one folder per stage:
 *     ckpt/<epoch>.safetensors   train: the newest checkpoint (the resume point)
 *     epochs.jsonl               train: one line per finished epoch
 *     <stage>.<mode>.tsv, .mat   certify: Cohen's per-image log, MACER's radii
 *     <stage>.journal.jsonl      certify: full-precision results of finished images (resume point)
 *     parts/<i>-of-<N>.*         certify, predict: the parts of a sharded run (see shard.ts)
 *     done.json                  the stage's summary, written when it has finished
 * <run>/summary.json             every stage's summary (no timings: bit-identical reruns)
 * <run>/report.html
 * ```
 *
 * @module
 */
import { writeFileAtomic } from "../io/atomic.ts";
import { InputError } from "../errors.ts";
import type { StageSummary } from "../report/summary.ts";
import type { Pipeline } from "./validate.ts";

const encoder = new TextEncoder();

/** Writes `value` as pretty JSON (trailing newline), atomically. */
export async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, encoder.encode(JSON.stringify(value, null, 2) + "\n"));
}

async function readJson(path: string): Promise<unknown | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw new InputError(`${path}: unreadable (${(e as Error).message})`);
  }
}

/** Paths of one run directory. */
export class RunDir {
  readonly root: string;
  constructor(root: string) {
    this.root = root.replace(/\/+$/, "") || "/";
  }
  get pipeline(): string {
    return `${this.root}/pipeline.json`;
  }
  get manifest(): string {
    return `${this.root}/manifest.json`;
  }
  get log(): string {
    return `${this.root}/log.txt`;
  }
  get summary(): string {
    return `${this.root}/summary.json`;
  }
  stage(name: string): string {
    return `${this.root}/stages/${name}`;
  }
  ckptdir(stage: string): string {
    return `${this.stage(stage)}/ckpt`;
  }
  done(stage: string): string {
    return `${this.stage(stage)}/done.json`;
  }

  /**
   * Creates the directory, or checks that it holds a run of the same pipeline.
   *
   * @param force take over a directory written by another pipeline
   * @throws {InputError} when the directory holds another pipeline's run
   */
  async claim(p: Pipeline, force: boolean): Promise<"new" | "resumed"> {
    await Deno.mkdir(this.root, { recursive: true });
    const existing = await readJson(this.pipeline);
    const resolved = JSON.stringify(p);
    if (existing !== undefined && JSON.stringify(existing) !== resolved) {
      if (!force) {
        throw new InputError(
          `${this.root} holds a run of a different pipeline (${this.pipeline} differs); ` +
            "choose another --out, or pass --force to start over there",
        );
      }
      await Deno.remove(`${this.root}/stages`, { recursive: true }).catch(() => {});
      await Deno.remove(this.summary).catch(() => {});
    }
    await writeJson(this.pipeline, p);
    return existing !== undefined && JSON.stringify(existing) === resolved ? "resumed" : "new";
  }

  /** The summary of a finished stage, or undefined. */
  async finished(stage: string): Promise<StageSummary | undefined> {
    return (await readJson(this.done(stage))) as StageSummary | undefined;
  }

  /** The newest checkpoint of a train stage, or null. */
  async newestCheckpoint(stage: string): Promise<{ path: string; epoch: number } | null> {
    let best: { path: string; epoch: number } | null = null;
    try {
      for await (const e of Deno.readDir(this.ckptdir(stage))) {
        const m = /^(\d+)\.safetensors$/.exec(e.name);
        if (e.isFile && m && (best === null || Number(m[1]) > best.epoch)) {
          best = { path: `${this.ckptdir(stage)}/${e.name}`, epoch: Number(m[1]) };
        }
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return best;
  }

  /**
   * Deletes a train stage's checkpoints older than `keep`, and the temporary file of a
   * checkpoint whose writing a kill interrupted.
   */
  async pruneCheckpoints(stage: string, keep: number): Promise<void> {
    for await (const e of Deno.readDir(this.ckptdir(stage))) {
      const m = /^(\d+)\.safetensors$/.exec(e.name);
      const stale = /^\..*\.tmp-/.test(e.name);
      if (stale || (m && Number(m[1]) < keep)) {
        await Deno.remove(`${this.ckptdir(stage)}/${e.name}`);
      }
    }
  }

  /** Appends a line to the log. */
  async appendLog(line: string): Promise<void> {
    await Deno.writeTextFile(this.log, line + "\n", { append: true });
  }
}

/** A fresh run folder name: `<name>-<UTC timestamp>`. */
export function defaultRunDir(name: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return `runs/${name}-${stamp}`;
}
