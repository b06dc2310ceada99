/**
 * `deno task submit FILE --slurm|--k8s [flags]`: a pipeline as cluster jobs. `--slurm` writes
 * batch scripts into `RUN_DIR/slurm/` and submits them with sbatch (a training job, an
 * array of certification shards after it, a merge job after them); `--k8s` writes Job
 * manifests (an Indexed Job for the shards) and prints the kubectl commands that apply them
 * in order. `--dry-run` prints the scripts or manifests and submits nothing.
 *
 * @module
 */
import { k8sManifests, kubectlLines, manifestText } from "../cluster/k8s.ts";
import type { StudyPlan } from "../cluster/plan.ts";
import { sbatchLines, slurmScripts, submitSlurm } from "../cluster/slurm.ts";
import { locatePipeline, planRuns } from "../pipeline/load.ts";
import { defaultRunDir } from "../pipeline/run_dir.ts";
import { parseCommandLine } from "./flags.ts";
import { UsageError } from "./usage_error.ts";

const USAGE = `Usage: deno task submit FILE (--slurm | --k8s) [flags]
Runs a pipeline on a cluster: one training job, the certification as an array of shards
after it, and a merge job after them (a matrix: one array task per combination).

  --set PATH=VALUE      override a field, as deno task pipeline --set
  --out DIR             the run directory every job writes into (default runs/<name>-<time>;
                        with --k8s, <mount>/<name>-<time>)
  --array-size N        shards of every certify and predict stage (default 4)
  --gpus-per-task G     GPUs of each training and certification task
  --dry-run             print the scripts (manifests) and the commands; submit nothing
  -h, --help            show this help

Slurm (sbatch; scripts and job logs go to RUN_DIR/slurm/):
  --slurm
  --partition P         --cpus-per-task C         --time T (e.g. 4:00:00)
  --deno PATH           the deno the jobs run (default: this one, ${Deno.execPath()})

Kubernetes (batch/v1 Jobs, applied with kubectl in order):
  --k8s
  --image IMAGE         container image holding the repository and deno (required)
  --claim NAME          PersistentVolumeClaim holding the run directory (required)
  --mount PATH          where the claim is mounted (default /runs)
  --root PATH           the repository inside the image (default /app)
  --namespace NS        --parallelism P (shards at once; default all)
  --manifests DIR       where the manifests are written (default k8s/<name>)`;

function bad(msg: string): never {
  throw new UsageError(`${msg}\n(see --help)`, 2);
}

function positiveInt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) bad(`--${name} ${v}: expected an integer >= 1`);
  return n;
}

function absolute(path: string): string {
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path}`.replace(/\/\.\//g, "/");
}

/**
 * Runs the `submit` command.
 *
 * @param args the command's arguments (without "submit")
 * @returns the exit code
 */
export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(args, {
    slurm: { type: "boolean" },
    k8s: { type: "boolean" },
    set: { type: "string", multiple: true },
    out: { type: "string" },
    "array-size": { type: "string" },
    "gpus-per-task": { type: "string" },
    "cpus-per-task": { type: "string" },
    partition: { type: "string" },
    time: { type: "string" },
    deno: { type: "string" },
    image: { type: "string" },
    claim: { type: "string" },
    mount: { type: "string" },
    root: { type: "string" },
    namespace: { type: "string" },
    parallelism: { type: "string" },
    manifests: { type: "string" },
    "dry-run": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  }, "(see --help)");
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1) bad("expected one pipeline file");
  if (values.slurm === values.k8s) bad("expected one of --slurm and --k8s");
  const shards = positiveInt("array-size", values["array-size"]) ?? 4;
  const gpus = positiveInt("gpus-per-task", values["gpus-per-task"]);
  const dryRun = values["dry-run"] ?? false;
  const file = await locatePipeline(positionals[0]);
  const sets = values.set ?? [];
  // The data may come with the jobs (dataset.download): files are checked when they run.
  const { name, runs } = await planRuns(file, sets, false);
  const trains = runs[0].pipeline.stages.some((s) => s.kind === "train");
  const repo = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

  if (values.slurm) {
    const plan: StudyPlan = {
      name,
      file: absolute(file),
      sets,
      runDir: absolute(values.out ?? defaultRunDir(name)),
      root: repo,
      deno: values.deno ?? Deno.execPath(),
      trains,
      combinations: runs.length,
      shards,
    };
    const scripts = slurmScripts(plan, {
      partition: values.partition,
      gpusPerTask: gpus,
      cpusPerTask: positiveInt("cpus-per-task", values["cpus-per-task"]),
      time: values.time,
    });
    const dir = `${plan.runDir}/slurm`;
    if (dryRun) {
      for (const s of scripts) console.log(`# ${dir}/${s.file}\n${s.text}`);
      console.log(`# submitted with:\n${sbatchLines(scripts, dir).join("\n")}`);
      return 0;
    }
    const ids = await submitSlurm(scripts, dir, Deno.env.get("MACER_SBATCH") ?? "sbatch");
    scripts.forEach((s, i) =>
      console.log(
        `${s.job.role}: job ${ids[i]}${s.job.count > 1 ? ` (array of ${s.job.count})` : ""}`,
      )
    );
    console.log(`run directory: ${plan.runDir}`);
    return 0;
  }

  if (values.image === undefined || values.claim === undefined) {
    bad("--k8s needs --image and --claim");
  }
  const root = (values.root ?? "/app").replace(/\/$/, "");
  const mount = (values.mount ?? "/runs").replace(/\/$/, "");
  const inRepo = absolute(file).startsWith(`${repo}/`);
  const plan: StudyPlan = {
    name,
    // A file of the repository is read from the image's copy.
    file: inRepo ? `${root}/${absolute(file).slice(repo.length + 1)}` : absolute(file),
    sets,
    runDir: values.out ?? `${mount}/${defaultRunDir(name).replace(/^runs\//, "")}`,
    root,
    deno: "deno",
    trains,
    combinations: runs.length,
    shards,
  };
  const manifests = k8sManifests(plan, {
    image: values.image,
    claim: values.claim,
    mount,
    gpus,
    parallelism: positiveInt("parallelism", values.parallelism),
    namespace: values.namespace,
  });
  const dir = values.manifests ?? `k8s/${name}`;
  const lines = kubectlLines(manifests, dir, values.namespace);
  if (dryRun) {
    for (const m of manifests) console.log(`# ${dir}/${m.file}\n---\n${manifestText(m)}`);
    console.log(`# applied with:\n${lines.join("\n")}`);
    return 0;
  }
  await Deno.mkdir(dir, { recursive: true });
  for (const m of manifests) await Deno.writeTextFile(`${dir}/${m.file}`, manifestText(m));
  if (!inRepo) console.log(`note: the pods read ${plan.file}; put it in the image or the claim`);
  console.log(`wrote ${manifests.map((m) => `${dir}/${m.file}`).join(", ")}; apply them with:`);
  console.log(lines.join("\n"));
  console.log(`run directory (in the pods): ${plan.runDir}`);
  return 0;
}
