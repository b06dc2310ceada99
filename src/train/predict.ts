/**
 * Cohen et al.'s PREDICT over a stretch of a test set, as `predict.py` runs it:
 * each image gets the smoothed classifier's class, or abstains when a binomial
 * test of the top two vote counts is not significant at alpha. Lines go to a
 * TSV log in predict.py's format as soon as each image is done.
 *
 * Every image's noise is a fixed stretch of the Philox stream `seed`, placed by
 * the image's index, as in certification.
 *
 * @module
 */
import { imageAt } from "../data/summary.ts";
import type { ImageDataset } from "../data/types.ts";
import { formatPredictRow, PREDICT_LOG_HEADER } from "../io/results.ts";
import type { Module } from "../nn/module.ts";
import { ABSTAIN, predict } from "../smoothing/certify.ts";
import { drawSpan, EngineSampler } from "../smoothing/sampler.ts";

/** Settings of a PREDICT run. */
export interface PredictRunOptions {
  /** Noise standard deviation. */
  sigma: number;
  /** Samples per image [100,000]. */
  n: number;
  /** Failure probability of the abstention test [0.001]. */
  alpha: number;
  /** Noisy copies per forward pass [1,000]. */
  batch: number;
  /** Philox key of the noise. */
  seed: number;
  /** Dataset indices, in order. */
  indices: readonly number[];
  /** predict.py's TSV log, written line by line. */
  log?: string;
  /** Called after every image. */
  onImage?: (p: PredictProgress) => void;
}

/** Progress after one image. */
export interface PredictProgress {
  done: number;
  total: number;
  index: number;
  label: number;
  /** Predicted class, -1 when abstaining. */
  prediction: number;
  /** Seconds since the run began. */
  elapsed: number;
}

/** Totals of a PREDICT run. */
export interface PredictRunResult {
  /** Predictions in the order of the indices (-1: abstained). */
  predictions: number[];
  count: number;
  correct: number;
  abstained: number;
  /** correct / count. */
  accuracy: number;
  /** abstained / count. */
  abstentionRate: number;
  seconds: number;
}

/**
 * Runs PREDICT on `o.indices` of `ds` with the smoothed `model`.
 *
 * @param model the base classifier
 * @param ds the test set
 * @param o sampling parameters, images, log file
 * @returns predictions, accuracy and abstention rate
 * @throws {RangeError} for an index outside the dataset
 */
export async function predictImages(
  model: Module,
  ds: ImageDataset,
  o: PredictRunOptions,
): Promise<PredictRunResult> {
  for (const i of o.indices) {
    if (!Number.isInteger(i) || i < 0 || i >= ds.count) {
      throw new RangeError(`Image index ${i} is out of range (0..${ds.count - 1})`);
    }
  }
  const shape = [ds.channels, ds.height, ds.width];
  const stride = drawSpan(o.n, o.batch, ds.channels * ds.height * ds.width);
  if ((Math.max(0, ...o.indices) + 1) * stride > 9e15) {
    throw new RangeError("Too many samples for one noise stream; lower --n or the image indices");
  }
  const file = o.log === undefined
    ? undefined
    : await Deno.open(o.log, { write: true, create: true, truncate: true });
  const encoder = new TextEncoder();
  const write = async (line: string) => {
    if (file === undefined) return;
    const bytes = encoder.encode(line + "\n");
    let off = 0;
    while (off < bytes.length) off += await file.write(bytes.subarray(off));
  };
  const predictions: number[] = [];
  let correct = 0, abstained = 0;
  const t0 = performance.now();
  try {
    await write(PREDICT_LOG_HEADER);
    for (const [done, index] of o.indices.entries()) {
      const t1 = performance.now();
      const sampler = new EngineSampler(model, imageAt(ds, index), shape, {
        sigma: o.sigma,
        beta: 1,
        seed: o.seed,
        offset: index * stride,
        hardOnly: true,
      });
      const label = ds.labels[index];
      const c = await predict(sampler, o.n, o.alpha, o.batch);
      predictions.push(c);
      if (c === ABSTAIN) abstained++;
      if (c === label) correct++;
      await write(
        formatPredictRow({ idx: index, label, predict: c, time: (performance.now() - t1) / 1000 }),
      );
      o.onImage?.({
        done: done + 1,
        total: o.indices.length,
        index,
        label,
        prediction: c,
        elapsed: (performance.now() - t0) / 1000,
      });
    }
  } finally {
    file?.close();
  }
  const count = o.indices.length;
  return {
    predictions,
    count,
    correct,
    abstained,
    accuracy: count === 0 ? 0 : correct / count,
    abstentionRate: count === 0 ? 0 : abstained / count,
    seconds: (performance.now() - t0) / 1000,
  };
}
