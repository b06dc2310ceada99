/**
 * What a study submitted to a cluster runs, whatever the scheduler: the
 * commands of its jobs. A pipeline without a matrix becomes a training job
 * (when it trains), an array of N certification shards that starts after it,
 * and a merge job after every shard; a matrix becomes one array task per
 * combination, each running its whole pipeline (training included).
 *
 * @module
 */

/** The study to submit. */
export interface StudyPlan {
  /** The pipeline's name (job names start with it). */
  name: string;
  /** The pipeline file, as the jobs will read it (absolute). */
  file: string;
  /** `--set` overrides, passed on. */
  sets: string[];
  /** The run directory, as the jobs will see it (absolute). */
  runDir: string;
  /** The repository root (where cli.ts is), as the jobs will see it. */
  root: string;
  /** The Deno executable the jobs run. */
  deno: string;
  /** Whether the pipeline has train stages (they run first, in one job). */
  trains: boolean;
  /** Matrix combinations (1 without a matrix). */
  combinations: number;
  /** Shards of every certify and predict stage (without a matrix). */
  shards: number;
}

/** One job: its role and command line (`$INDEX` stands for the array index). */
export interface Job {
  role: "train" | "certify" | "merge";
  /** Array tasks, 0..count-1 (1: no array). */
  count: number;
  /** argv; an element may contain {@linkcode INDEX}. */
  argv: string[];
}

/** Stands for the array index in a {@linkcode Job}'s argv. */
export const INDEX = "$INDEX";

/**
 * The jobs of a study, in submission order; each starts after the one before it has
 * succeeded (every task of an array).
 */
export function jobsOf(s: StudyPlan): Job[] {
  const cli = (...args: string[]) => [s.deno, "run", "--allow-all", `${s.root}/cli.ts`, ...args];
  const pipeline = (...args: string[]) =>
    cli("pipeline", s.file, "--out", s.runDir, ...s.sets.flatMap((v) => ["--set", v]), ...args);
  if (s.combinations > 1) {
    return [{ role: "certify", count: s.combinations, argv: pipeline("--combination", INDEX) }];
  }
  const jobs: Job[] = [];
  if (s.trains) jobs.push({ role: "train", count: 1, argv: pipeline("--train-only") });
  jobs.push({
    role: "certify",
    count: s.shards,
    argv: pipeline("--shard", `${INDEX}/${s.shards}`),
  });
  jobs.push({ role: "merge", count: 1, argv: cli("merge", s.runDir) });
  return jobs;
}

/** `s` quoted for a POSIX shell (left bare when it is safe). */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_\/.,:=@%+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}
