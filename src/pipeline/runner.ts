/**
 * Runs a validated pipeline into a run directory, stage by stage. A finished
 * stage is never run again; a train stage continues from its newest
 * checkpoint; so running again into the same directory after a crash or a
 * kill resumes, and the result is bit-identical to an uninterrupted run. The
 * pipeline layer knows nothing of devices: it calls the training and
 * certification libraries.
 *
 * @module
 */
import { setThreads, threads } from "../../compute/tensor.ts";
import {
  currentDevice,
  type DeviceChoice,
  type DeviceSelection,
  useDevice,
} from "../../compute/device.ts";
import { imageAt } from "../data/summary.ts";
import { loadDataset } from "../data/load.ts";
import type { ImageDataset, Split } from "../data/types.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { loadCheckpoint } from "../io/checkpoint.ts";
import type { Module } from "../nn/module.ts";
import {
  type CertifyStageSummary,
  type PredictStageSummary,
  type RunSummary,
  type StageSummary,
  SUMMARY_FORMAT,
  SUMMARY_VERSION,
  type TrainStageSummary,
} from "../report/summary.ts";
import { writeReport } from "../report/html.ts";
import { ABSTAIN, predict } from "../smoothing/certify.ts";
import { drawSpan, EngineSampler } from "../smoothing/sampler.ts";
import { certifyImages } from "../train/evaluate.ts";
import { buildModel } from "../train/models.ts";
import { runTraining } from "../train/run.ts";
import { defaultsOf } from "../spec/spec.ts";
import { isFileRef } from "./compose.ts";
import { CERTIFY_STAGE } from "./schema.ts";
import { checkExpectations } from "./expect.ts";
import { writeManifest } from "./manifest.ts";
import { RunDir, writeJson } from "./run_dir.ts";
import {
  type CertifyStage,
  type Pipeline,
  PipelineError,
  type PredictStage,
  type TrainStage,
} from "./validate.ts";

/** Progress of the stage at work. */
export interface Progress {
  stage: string;
  /** What is counted: "step" (of an epoch) or "image". */
  unit: "step" | "image";
  done: number;
  total: number;
  /** Seconds since this count began. */
  seconds: number;
  /** A short status, e.g. "epoch 3/10  classification 0.41". */
  detail: string;
}

/** Where a run reports to. */
export interface RunEvents {
  /** A line for the user (also appended to the run's log.txt). */
  log?: (line: string) => void;
  progress?: (p: Progress) => void;
}

/** What a run produced. */
export interface RunOutcome {
  dir: string;
  summary: RunSummary;
  /** Expectations that did not hold, described. */
  failed: string[];
  /** Whether an earlier run in this directory was continued. */
  resumed: boolean;
}

/** Seed of the j-th train stage: the pipeline's for the first, then spaced apart. */
export function stageSeed(pipelineSeed: number, trainIndex: number): number {
  return pipelineSeed + trainIndex * 1_000_003;
}

/** Seconds spent per stage and per epoch, for the manifest (kept out of summary.json). */
export type Timings = Record<string, { seconds: number; epoch_seconds?: number[] }>;

class Runner {
  readonly p: Pipeline;
  readonly dir: RunDir;
  readonly events: RunEvents;
  readonly timings: Timings = {};
  readonly #data = new Map<Split, Promise<ImageDataset>>();

  constructor(p: Pipeline, dir: RunDir, events: RunEvents) {
    this.p = p;
    this.dir = dir;
    this.events = events;
  }

  async log(line: string): Promise<void> {
    this.events.log?.(line);
    await this.dir.appendLog(line);
  }

  data(split: Split): Promise<ImageDataset> {
    let d = this.#data.get(split);
    if (d === undefined) {
      const ds = this.p.dataset;
      d = loadDataset(ds.name, {
        root: ds.root,
        split,
        download: ds.download,
        baseUrl: ds.base_url,
      });
      this.#data.set(split, d);
    }
    return d;
  }

  /** The final checkpoint of a finished train stage, or a checkpoint file. */
  async modelOf(ref: { model?: string; checkpoint?: string }): Promise<Module> {
    const classes = (await this.data("test")).classes;
    const model = buildModel(this.p.model, 0, classes);
    const path = ref.checkpoint ?? (await this.dir.newestCheckpoint(ref.model!))!.path;
    await loadCheckpoint(path, model);
    return model;
  }

  async train(st: TrainStage, trainIndex: number): Promise<TrainStageSummary> {
    const trainSet = await this.data("train");
    const seed = stageSeed(this.p.seed, trainIndex);
    const model = buildModel(this.p.model, seed, trainSet.classes);
    const newest = await this.dir.newestCheckpoint(st.name);
    const epochsFile = `${this.dir.stage(st.name)}/epochs.jsonl`;
    const kept = newest === null ? [] : await readEpochs(epochsFile, newest.epoch);
    if (newest !== null) {
      await this.log(`${st.name}: resuming from ${newest.path}`);
    } else if (st.init !== undefined) {
      const from = isFileRef(st.init) ? st.init : (await this.dir.newestCheckpoint(st.init))!.path;
      await loadCheckpoint(from, model);
      await this.log(`${st.name}: starting from the weights of ${from}`);
    }
    await Deno.mkdir(this.dir.stage(st.name), { recursive: true });
    // Atomic: a kill during this rewrite must not lose the epochs already done.
    await writeFileAtomic(
      epochsFile,
      new TextEncoder().encode(kept.map((e) => JSON.stringify(e) + "\n").join("")),
    );
    const { kind: _k, name: _n, checkpoint_every, certify_every, init: _i, ...hyper } = st;
    const settings = { ...hyper, seed };
    const every = checkpoint_every;
    const epochs = [...kept];
    await runTraining({
      settings,
      model,
      trainSet,
      ckptdir: this.dir.ckptdir(st.name),
      checkpointAt: (e) => every > 0 && e % every === 0,
      resume: newest?.path ?? null,
      record: { pipeline: this.p.name, stage: st.name, model: this.p.model, ...settings },
      onStep: (s) =>
        this.events.progress?.({
          stage: st.name,
          unit: "step",
          done: s.step,
          total: s.steps,
          seconds: s.seconds,
          detail: `epoch ${s.epoch}/${st.epochs}  classification ${
            s.classification.toFixed(4)
          }  robustness ${s.robustness.toFixed(4)}`,
        }),
      onEpoch: async (r) => {
        const line = {
          epoch: r.epoch,
          lr: r.lr,
          classification: r.classification,
          robustness: r.robustness,
          seconds: r.seconds,
        };
        await this.log(
          `${st.name}: epoch ${r.epoch}/${st.epochs}  lr ${r.lr}  classification ${
            r.classification.toFixed(5)
          }  robustness ${r.robustness.toFixed(5)}  ${r.seconds.toFixed(1)} s`,
        );
        if (certify_every > 0 && r.epoch % certify_every === 0) {
          // As main.py: hard certification of the model as it is after this epoch.
          const run = await this.certifyModel(
            model,
            this.duringTraining(st),
            `${this.dir.stage(st.name)}/certify`,
            String(r.epoch),
            `${st.name} (epoch ${r.epoch})`,
          );
          Object.assign(line, { acr: run.metrics.hard!.acr });
        }
        epochs.push(line);
        await Deno.writeTextFile(epochsFile, JSON.stringify(line) + "\n", { append: true });
      },
      // Only the newest checkpoint is kept: it is the resume point and the stage's model.
      onSave: (_path, epoch) => this.dir.pruneCheckpoints(st.name, epoch),
    });
    this.timings[st.name] = {
      seconds: epochs.reduce((a, e) => a + e.seconds, 0),
      epoch_seconds: epochs.map((e) => e.seconds),
    };
    return {
      name: st.name,
      kind: "train",
      method: st.method,
      sigma: st.sigma,
      model: this.p.model,
      dataset: this.p.dataset.name,
      epochs: epochs.map(({ seconds: _s, ...e }) => e) as TrainStageSummary["epochs"],
    };
  }

  /** The test images of a range (checkRanges has kept it inside the test split). */
  indices(st: { start_img: number; num_img: number; skip: number }): number[] {
    return Array.from({ length: st.num_img }, (_, i) => st.start_img + i * st.skip);
  }

  /**
   * Test-image ranges that run past the test split, found before any work (not after hours
   * of training).
   *
   * @throws {PipelineError} naming each stage whose range is too long
   */
  async checkRanges(): Promise<void> {
    const ranged = this.p.stages.flatMap((st, i) =>
      st.kind === "certify" || st.kind === "predict" ? [{ st, i }] : []
    );
    if (ranged.length === 0) return;
    const count = (await this.data("test")).count;
    const problems = ranged.flatMap(({ st, i }) => {
      const last = st.start_img + (st.num_img - 1) * st.skip;
      return last < count ? [] : [{
        path: `stages[${i}].num_img`,
        message: `start_img ${st.start_img}, num_img ${st.num_img}, skip ${st.skip} reach test ` +
          `image ${last}; the test split of ${this.p.dataset.name} has ${count} (0..${count - 1})`,
      }];
    });
    if (problems.length > 0) throw new PipelineError(`pipeline ${this.p.name}`, problems);
  }

  /** Certifies `model` with `st`'s settings into `<dir>/<name>.*` (journal included). */
  async certifyModel(model: Module, st: CertifyStage, dir: string, name: string, label: string) {
    const testSet = await this.data("test");
    await Deno.mkdir(dir, { recursive: true });
    const run = await certifyImages(model, testSet, {
      mode: st.mode,
      sigma: st.sigma,
      beta: st.beta,
      n0: st.n0,
      n: st.n,
      alpha: st.alpha,
      batch: st.batch,
      seed: 2 * this.p.seed + 1,
      indices: this.indices(st),
      output: { dir, name },
      journal: `${dir}/${name}.journal.jsonl`,
      params: { pipeline: this.p.name, stage: st.name, model: st.model ?? st.checkpoint },
      onImage: (i) =>
        this.events.progress?.({
          stage: label,
          unit: "image",
          done: i.done,
          total: i.total,
          seconds: i.elapsed,
          detail: `image ${i.index}`,
        }),
    });
    for (const [mode, m] of Object.entries(run.metrics)) {
      await this.log(
        `${label}: ${mode}: ACR ${m!.acr.toFixed(4)}  certified accuracy ${
          m!.certifiedAccuracy.map((c) => `${c.radius}:${(c.count / m!.counts.total).toFixed(3)}`)
            .join(" ")
        }`,
      );
    }
    return run;
  }

  /**
   * The certification settings of a train stage's `certify_every`: those of the first later
   * certify stage that certifies its model, else the defaults, in hard mode (as main.py).
   */
  duringTraining(st: TrainStage): CertifyStage {
    const later = this.p.stages.find((c): c is CertifyStage =>
      c.kind === "certify" && c.model === st.name
    );
    const defaults = defaultsOf(CERTIFY_STAGE) as unknown as CertifyStage;
    return {
      ...defaults,
      ...later,
      name: st.name,
      model: st.name,
      sigma: later?.sigma ?? st.sigma,
      mode: "hard",
    };
  }

  async certify(st: CertifyStage): Promise<CertifyStageSummary> {
    const model = await this.modelOf(st);
    const t0 = performance.now();
    const run = await this.certifyModel(model, st, this.dir.stage(st.name), st.name, st.name);
    this.timings[st.name] = { seconds: (performance.now() - t0) / 1000 };
    return {
      name: st.name,
      kind: "certify",
      model: st.model ?? st.checkpoint!,
      sigma: st.sigma,
      n: st.n,
      modes: run.metrics,
    };
  }

  async predict(st: PredictStage): Promise<PredictStageSummary> {
    const testSet = await this.data("test");
    const model = await this.modelOf(st);
    const shape = [testSet.channels, testSet.height, testSet.width];
    const stride = drawSpan(st.n, st.batch, shape[0] * shape[1] * shape[2]);
    const indices = this.indices(st);
    await Deno.mkdir(this.dir.stage(st.name), { recursive: true });
    const lines = ["idx\tlabel\tpredict\tcorrect\ttime"];
    let correct = 0, abstained = 0;
    const t0 = performance.now();
    for (const [done, index] of indices.entries()) {
      const t1 = performance.now();
      const sampler = new EngineSampler(model, imageAt(testSet, index), shape, {
        sigma: st.sigma,
        beta: 1,
        seed: 2 * this.p.seed + 1,
        offset: index * stride,
        hardOnly: true,
      });
      const label = testSet.labels[index];
      const c = await predict(sampler, st.n, st.alpha, st.batch);
      if (c === ABSTAIN) abstained++;
      if (c === label) correct++;
      lines.push(
        `${index}\t${label}\t${c}\t${c === label ? 1 : 0}\t${
          ((performance.now() - t1) / 1000).toFixed(3)
        }`,
      );
      this.events.progress?.({
        stage: st.name,
        unit: "image",
        done: done + 1,
        total: indices.length,
        seconds: (performance.now() - t0) / 1000,
        detail: `image ${index}`,
      });
    }
    await Deno.writeTextFile(`${this.dir.stage(st.name)}/${st.name}.tsv`, lines.join("\n") + "\n");
    this.timings[st.name] = { seconds: (performance.now() - t0) / 1000 };
    const count = indices.length;
    await this.log(
      `${st.name}: accuracy ${(correct / count).toFixed(4)}, abstained ${abstained}/${count}`,
    );
    return {
      name: st.name,
      kind: "predict",
      model: st.model ?? st.checkpoint!,
      sigma: st.sigma,
      count,
      correct,
      abstained,
      accuracy: correct / count,
      abstention_rate: abstained / count,
    };
  }
}

async function readEpochs(path: string, upTo: number): Promise<EpochLine[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  // Lines past the checkpoint (a kill between an epoch's line and its checkpoint) are redone.
  return text.split("\n").filter((l) => l.trim() !== "").flatMap((l) => {
    try {
      const e = JSON.parse(l) as EpochLine;
      return e.epoch <= upTo ? [e] : [];
    } catch {
      return []; // a line cut short by a kill
    }
  });
}

/** A finished train stage's times, from its epochs.jsonl. */
async function epochTimings(path: string): Promise<Timings[string]> {
  const epochs = await readEpochs(path, Infinity);
  return {
    seconds: epochs.reduce((a, e) => a + e.seconds, 0),
    epoch_seconds: epochs.map((e) => e.seconds),
  };
}

/** The stage times of an earlier run's manifest.json ({} where there is none). */
async function manifestTimings(path: string): Promise<Timings> {
  try {
    const stages = JSON.parse(await Deno.readTextFile(path)).stages;
    return typeof stages === "object" && stages !== null ? stages : {};
  } catch {
    return {};
  }
}

interface EpochLine {
  epoch: number;
  lr: number;
  classification: number;
  robustness: number;
  seconds: number;
}

/**
 * Runs `p` into `dirPath`: finished stages are kept, a train stage resumes
 * from its newest checkpoint, the rest runs; then summary.json, the report and
 * the expectations.
 *
 * @param p a validated pipeline
 * @param dirPath the run directory
 * @param o `force` takes over a directory of another pipeline; events for the user
 * @throws {InputError} when the directory holds another pipeline's run, or data cannot be read
 */
export async function runPipeline(
  p: Pipeline,
  dirPath: string,
  o: { force?: boolean; events?: RunEvents } = {},
): Promise<RunOutcome> {
  const dir = new RunDir(dirPath);
  const r = new Runner(p, dir, o.events ?? {});
  await r.checkRanges(); // before anything is written
  const resumed = (await dir.claim(p, o.force ?? false)) === "resumed";
  const before = { threads: threads(), device: currentDevice() };
  setThreads(p.threads);
  const device = useDevice(p.device as DeviceChoice);
  const started = new Date();
  // Stages kept from an earlier run keep their times in the manifest.
  const earlier = resumed ? await manifestTimings(dir.manifest) : {};
  try {
    await r.log(
      `${resumed ? "resuming" : "starting"} ${p.name} in ${dir.root} on ${describe(device)}`,
    );
    const stages: StageSummary[] = [];
    let trainIndex = 0;
    for (const st of p.stages) {
      const index = st.kind === "train" ? trainIndex++ : -1;
      if (st.kind === "report") continue;
      const done = await dir.finished(st.name);
      if (done !== undefined) {
        await r.log(`${st.name}: finished earlier, kept`);
        stages.push(done);
        const t = st.kind === "train"
          ? await epochTimings(`${dir.stage(st.name)}/epochs.jsonl`)
          : earlier[st.name];
        if (t !== undefined) r.timings[st.name] = t;
        continue;
      }
      await r.log(`${st.name}: ${st.kind}`);
      const summary = st.kind === "train"
        ? await r.train(st, index)
        : st.kind === "certify"
        ? await r.certify(st)
        : await r.predict(st);
      await writeJson(dir.done(st.name), summary);
      stages.push(summary);
    }
    const summary: RunSummary = {
      format: SUMMARY_FORMAT,
      version: SUMMARY_VERSION,
      name: p.name,
      stages,
    };
    await writeJson(dir.summary, summary);
    await writeManifest(dir, p, {
      started,
      finished: new Date(),
      timings: r.timings,
      device,
    });
    if (p.stages.some((s) => s.kind === "report")) {
      await r.log(`report: ${await writeReport(dir.root)}`);
    }
    const failed = await checkExpectations(p, summary, dir.summary);
    for (const f of failed) await r.log(`expectation failed: ${f}`);
    return { dir: dir.root, summary, failed, resumed };
  } finally {
    setThreads(before.threads);
    useDevice(before.device);
  }
}

function describe(d: DeviceSelection): string {
  return d.adapter === undefined ? d.device : `${d.device} (${d.adapter})`;
}
