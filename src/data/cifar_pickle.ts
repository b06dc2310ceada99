/**
 * CIFAR-10's python version (`cifar-10-batches-py/`): each batch is a pickled
 * dict with `data` (a uint8 NumPy array, N x 3072, each row the red, green
 * and blue 32x32 planes, i.e. NCHW) and `labels` (a list of N ints).
 * Read with the data-only pickle reader: nothing in the file is executed.
 *
 * @module
 */
import { DatasetError } from "./errors.ts";
import { readFileOrThrow } from "./_files.ts";
import { PickleError, PyNdarray, readPickle } from "./pickle.ts";
import { CIFAR_IMAGE_BYTES, type CifarBatches } from "./cifar_bin.ts";
import type { Split } from "./types.ts";

/** The batch files of each split, in the order they are concatenated. */
export const CIFAR_PY_FILES: Record<Split, string[]> = {
  train: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}`),
  test: ["test_batch"],
};

/**
 * Parses one pickled CIFAR-10 batch.
 *
 * @param bytes the file's bytes
 * @param path the file name, for messages
 * @returns NCHW images and labels (labels checked to be below 10)
 * @throws DatasetError when the pickle is refused, or `data`/`labels` are
 *   missing, mis-shaped or disagree in length
 */
export function parseCifarPickle(bytes: Uint8Array, path: string): CifarBatches {
  let value;
  try {
    value = readPickle(bytes);
  } catch (err) {
    if (err instanceof PickleError) throw new DatasetError(err.message, path);
    throw err;
  }
  if (!(value instanceof Map)) throw new DatasetError("pickle does not hold a dict", path);
  const data = value.get("data");
  const labels = value.get("labels");
  if (!(data instanceof PyNdarray)) {
    throw new DatasetError("batch dict has no uint8 array under 'data'", path);
  }
  if (data.shape.length !== 2 || data.shape[1] !== CIFAR_IMAGE_BYTES) {
    throw new DatasetError(
      `'data' has shape ${data.shape.join("x")}, expected Nx${CIFAR_IMAGE_BYTES}`,
      path,
    );
  }
  if (!Array.isArray(labels)) throw new DatasetError("batch dict has no list under 'labels'", path);
  const count = data.shape[0];
  if (labels.length !== count) {
    throw new DatasetError(
      `'labels' holds ${labels.length} entries but 'data' ${count} rows`,
      path,
    );
  }
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const l = labels[i];
    if (typeof l !== "number" || !Number.isInteger(l) || l < 0 || l > 9) {
      throw new DatasetError(`label ${l} of image ${i} is out of range (expected 0..9)`, path);
    }
    out[i] = l;
  }
  if (count === 0) throw new DatasetError("batch holds no images", path);
  return { images: data.data, labels: out };
}

/**
 * Reads pickled CIFAR-10 batch files and concatenates them in order.
 *
 * @param paths the batch files
 */
export async function readCifarPickleBatches(paths: string[]): Promise<CifarBatches> {
  const parts: CifarBatches[] = [];
  let count = 0;
  for (const path of paths) {
    const b = parseCifarPickle(await readFileOrThrow(path), path);
    parts.push(b);
    count += b.labels.length;
  }
  if (parts.length === 1) return parts[0];
  const images = new Uint8Array(count * CIFAR_IMAGE_BYTES);
  const labels = new Uint8Array(count);
  let n = 0;
  for (const b of parts) {
    images.set(b.images, n * CIFAR_IMAGE_BYTES);
    labels.set(b.labels, n);
    n += b.labels.length;
  }
  return { images, labels };
}
