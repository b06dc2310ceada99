/**
 * Per-image access and whole-dataset statistics.
 *
 * @module
 */
import type { ImageDataset } from "./types.ts";

/**
 * One image as float32 in [0, 1], CHW (no normalisation).
 *
 * @param ds the dataset
 * @param index the image, 0..count-1
 * @returns a new array of `channels * height * width` values
 * @throws RangeError when `index` is out of range
 */
export function imageAt(ds: ImageDataset, index: number): Float32Array {
  if (!Number.isInteger(index) || index < 0 || index >= ds.count) {
    throw new RangeError(`Image index ${index} is out of range (0..${ds.count - 1})`);
  }
  const size = ds.channels * ds.height * ds.width;
  const out = new Float32Array(size);
  const src = ds.decode ? ds.decode(index) : ds.images.subarray(index * size, (index + 1) * size);
  for (let i = 0; i < size; i++) out[i] = src[i] / 255;
  return out;
}

/** What `summarize` reports. */
export interface DatasetSummary {
  count: number;
  /** [count, channels, height, width]. */
  shape: [number, number, number, number];
  classes: number;
  /** Images per class, indexed by label. */
  label_counts: number[];
  /** Smallest, largest and mean pixel value, in [0, 1]. */
  min: number;
  max: number;
  mean: number;
}

/**
 * Counts, shape, label histogram and pixel statistics of a dataset.
 *
 * @param ds the dataset
 */
export function summarize(ds: ImageDataset): DatasetSummary {
  const label_counts = new Array<number>(ds.classes).fill(0);
  for (const l of ds.labels) label_counts[l]++;
  // A byte histogram: exact, and faster than summing floats.
  const hist = new Float64Array(256);
  let n = 0;
  for (let k = 0; k < (ds.decode ? ds.count : 1); k++) {
    const px = ds.decode ? ds.decode(k) : ds.images;
    for (let i = 0; i < px.length; i++) hist[px[i]]++;
    n += px.length;
  }
  let min = 255, max = 0, sum = 0;
  for (let v = 0; v < 256; v++) {
    if (hist[v] === 0) continue;
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v * hist[v];
  }
  return {
    count: ds.count,
    shape: [ds.count, ds.channels, ds.height, ds.width],
    classes: ds.classes,
    label_counts,
    min: n === 0 ? 0 : min / 255,
    max: n === 0 ? 0 : max / 255,
    mean: n === 0 ? 0 : sum / n / 255,
  };
}
