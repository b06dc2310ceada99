/**
 * A pipeline run split over processes (a Slurm job array, a Kubernetes
 * Indexed Job): the train stages run once, in one process; every certify and
 * predict stage runs as N shards, each leaving its part (see shard.ts); the
 * merge joins the parts into exactly the files a single-process run writes
 * (`<stage>.<mode>.tsv` in image order, the `.mat` radii, `<stage>.summary.json`,
 * the journal, `done.json`, `summary.json`, `manifest.json`, the report). Only
 * the measured times differ: the time columns of the TSV logs, the journal's
 * `seconds` and the `timings` of `<stage>.summary.json` are the shards' own.
 *
 * @module
 */
import type { DeviceSelection } from "../../compute/device.ts";
import { InputError } from "../errors.ts";
import type { StageSummary } from "../report/summary.ts";
import {
  certifyLogText,
  type CertifyRunMode,
  resultsOf,
  writeCertifyFiles,
} from "../train/evaluate.ts";
import type { JournalEntry } from "../train/journal.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { computeMetrics } from "../smoothing/metrics.ts";
import { type Part, Parts, type PredictImage, type Shard, shardSlice } from "./shard.ts";
import {
  certifySummary,
  finishRun,
  manifestTimings,
  type PredictRow,
  type RunEvents,
  Runner,
  type RunOutcome,
  withSettings,
} from "./runner.ts";
import { RunDir, writeJson } from "./run_dir.ts";
import type { CertifyStage, Pipeline } from "./validate.ts";

/** What a shard run did. */
export interface ShardOutcome {
  dir: string;
  /** The merged run, when this shard's part was the last one missing. */
  merged: RunOutcome | null;
  /** What the merge still waits for (empty once merged). */
  waiting: string[];
}

/**
 * Runs shard `shard` of every certify and predict stage of `p` into `dirPath`, leaving one
 * part per stage; a part already there is kept. Merges the run when every part of every
 * stage is there.
 *
 * @throws {InputError} when a train stage has not finished in the directory (a shard
 *   certifies the trained model; train it first with `trainOnly`)
 */
export async function runShard(
  p: Pipeline,
  dirPath: string,
  shard: Shard,
  o: { force?: boolean; events?: RunEvents } = {},
): Promise<ShardOutcome> {
  const dir = new RunDir(dirPath);
  const r = new Runner(p, dir, o.events ?? {});
  await r.checkRanges();
  await dir.claim(p, o.force ?? false);
  const tag = `${shard.index}/${shard.count}`;
  for (const st of p.stages) {
    if (st.kind !== "train") continue;
    if ((await dir.finished(st.name)) === undefined) {
      throw new InputError(
        `${dir.root}: train stage ${st.name} has not finished, and shard ${tag} certifies its ` +
          "model: run the training first (deno task pipeline FILE --out DIR --train-only)",
      );
    }
  }
  await withSettings(p, async (device) => {
    for (const st of p.stages) {
      if (st.kind !== "certify" && st.kind !== "predict") continue;
      const parts = new Parts(dir, st.name);
      if ((await dir.finished(st.name)) !== undefined || await parts.has(shard)) {
        await r.log(`${st.name}: shard ${tag} finished earlier, kept`);
        continue;
      }
      const indices = shardSlice(r.indices(st), shard);
      await r.log(`${st.name}: shard ${tag}, ${indices.length} images`);
      const started = new Date();
      const t0 = performance.now();
      let images: Part["images"], seconds: number[];
      if (indices.length === 0) {
        // More shards than images: an empty part, so that the set is complete.
        images = [];
        seconds = [];
      } else if (st.kind === "certify") {
        const work = parts.work(shard);
        await r.certifyModel(await r.modelOf(st), st, work, st.name, `${st.name} ${tag}`, indices);
        const journal = await readJournalLines(`${work}/${st.name}.journal.jsonl`);
        images = journal.map(({ seconds: _s, ...e }) => e);
        seconds = journal.map((e) => e.seconds);
      } else {
        const rows = await r.predictImages(st, indices);
        images = rows.map(({ seconds: _s, ...e }) => e);
        seconds = rows.map((e) => e.seconds);
      }
      await parts.write(shard, {
        format: "macer-shard-part",
        version: 1,
        stage: st.name,
        kind: st.kind,
        shard: shard.index,
        shards: shard.count,
        indices,
        images,
      }, {
        started: started.toISOString(),
        finished: new Date().toISOString(),
        seconds: (performance.now() - t0) / 1000,
        images: seconds,
        device: { device: device.device, adapter: device.adapter },
      });
    }
  });
  const waiting = await waitingFor(r);
  if (waiting.length > 0) {
    await r.log(`shard ${tag} finished; the merge waits for: ${waiting.join("; ")}`);
    return { dir: dir.root, merged: null, waiting };
  }
  await r.log(`shard ${tag} finished; every part is there: merging`);
  return { dir: dir.root, merged: await mergeRun(dir.root, o), waiting: [] };
}

/** The missing or conflicting parts of the stages that have not finished. */
async function waitingFor(r: Runner): Promise<string[]> {
  const waiting: string[] = [];
  for (const st of r.p.stages) {
    if (st.kind !== "certify" && st.kind !== "predict") continue;
    if ((await r.dir.finished(st.name)) !== undefined) continue;
    waiting.push(...await new Parts(r.dir, st.name).problems(r.indices(st)));
  }
  return waiting;
}

async function readJournalLines(path: string): Promise<JournalEntry[]> {
  const text = await Deno.readTextFile(path);
  return text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

/**
 * Joins the parts of every certify and predict stage of the run in `dirPath` into the files
 * a single-process run writes, then writes summary.json, manifest.json and the report, and
 * checks the expectations. A stage finished by a single process (no parts) is kept.
 *
 * @throws {InputError} when the directory holds no run, a train stage has not finished, or a
 *   stage's parts are missing or overlap (each named)
 */
export async function mergeRun(
  dirPath: string,
  o: { events?: RunEvents } = {},
): Promise<RunOutcome> {
  const dir = new RunDir(dirPath);
  let p: Pipeline;
  try {
    p = JSON.parse(await Deno.readTextFile(dir.pipeline));
  } catch (e) {
    throw new InputError(
      `${dir.pipeline}: ${
        e instanceof Deno.errors.NotFound ? "missing" : (e as Error).message
      }; not a run directory`,
    );
  }
  const r = new Runner(p, dir, o.events ?? {});
  const earlier = await manifestTimings(dir.manifest);
  const stages: StageSummary[] = [];
  const spans: { started: string; finished: string }[] = [];
  // The device the shards used (the merge itself computes nothing).
  let device: DeviceSelection = { device: p.device === "gpu" ? "gpu" : "cpu" };
  const problems: string[] = [];
  for (const st of p.stages) {
    if (st.kind === "report") continue;
    const parts = new Parts(dir, st.name);
    if (st.kind === "train" || (await parts.present()).length === 0) {
      const done = await r.kept(st, earlier);
      if (done === undefined) {
        problems.push(`stage ${st.name} (${st.kind}) has not finished and has no parts`);
      } else stages.push(done);
      continue;
    }
    const conflicts = await parts.problems(r.indices(st));
    if (conflicts.length > 0) {
      problems.push(...conflicts.map((c) => `stage ${st.name}: ${c}`));
      continue;
    }
    const merged = await parts.merged(r.indices(st));
    spans.push(merged);
    device = merged.device;
    r.timings[st.name] = { seconds: merged.seconds, shards: merged.shards };
    const summary = st.kind === "certify"
      ? await writeMergedCertify(r, st, merged.images as MergedImages<CertifyImage>)
      : await r.writePredictions(
        st,
        (merged.images as MergedImages<PredictImage>).map(({ image, seconds }) => ({
          ...image,
          seconds,
        } as PredictRow)),
      );
    await writeJson(dir.done(st.name), summary);
    await r.log(`${st.name}: merged ${merged.shards} parts`);
    stages.push(summary);
  }
  if (problems.length > 0) {
    throw new InputError(`${dir.root}: cannot merge:\n${problems.map((m) => `  ${m}`).join("\n")}`);
  }
  const now = new Date().toISOString();
  return await finishRun(r, stages, {
    started: new Date(spans.map((s) => s.started).sort()[0] ?? now),
    finished: new Date(spans.map((s) => s.finished).sort().at(-1) ?? now),
    device,
  });
}

type CertifyImage = Omit<JournalEntry, "seconds">;
type MergedImages<T> = { image: T; seconds: number }[];

/** A certify stage's files from its parts, as `certifyImages` writes them. */
async function writeMergedCertify(
  r: Runner,
  st: CertifyStage,
  images: MergedImages<CertifyImage>,
): Promise<StageSummary> {
  const out = { dir: r.dir.stage(st.name), name: st.name };
  const entries: JournalEntry[] = images.map(({ image, seconds }) => ({ ...image, seconds }));
  const opts = r.certifyOptions(st, entries.map((e) => e.index));
  const results = resultsOf(st.mode as CertifyRunMode, entries);
  const metrics = Object.fromEntries(
    Object.entries(results).map(([m, rs]) => [m, computeMetrics(rs!)]),
  );
  const encoder = new TextEncoder();
  for (const m of Object.keys(results) as ("hard" | "soft")[]) {
    await writeFileAtomic(
      `${out.dir}/${out.name}.${m}.tsv`,
      encoder.encode(certifyLogText(m, entries)),
    );
  }
  await writeFileAtomic(
    `${out.dir}/${out.name}.journal.jsonl`,
    encoder.encode(entries.map((e) => JSON.stringify(e) + "\n").join("")),
  );
  const seconds = entries.reduce((a, e) => a + e.seconds, 0);
  await writeCertifyFiles(out, opts, results, metrics, seconds);
  return certifySummary(st, metrics);
}
