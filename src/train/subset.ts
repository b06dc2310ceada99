/**
 * The first images of a dataset as a dataset of its own (views, no copies):
 * quick runs on part of a training set.
 *
 * @module
 */
import type { ImageDataset } from "../data/types.ts";

/**
 * The first `count` images of `ds` (all of them when `count` is larger).
 *
 * @param ds the dataset
 * @param count images to keep, >= 1
 * @returns a dataset sharing `ds`'s memory
 */
export function firstImages(ds: ImageDataset, count: number): ImageDataset {
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`count must be an integer >= 1, got ${count}`);
  }
  if (count >= ds.count) return ds;
  const size = ds.channels * ds.height * ds.width;
  return {
    ...ds,
    count,
    images: ds.images.subarray(0, count * size),
    labels: ds.labels.subarray(0, count),
  };
}
