/**
 * CIFAR-10's binary version (`cifar-10-batches-bin/`): each record is one
 * label byte followed by 3,072 pixel bytes (red, green, blue planes of 32x32,
 * row-major), which is already NCHW.
 *
 * @module
 */
import { DatasetError } from "./errors.ts";
import { readFileOrThrow } from "./_files.ts";
import type { Split } from "./types.ts";

/** Bytes of one image. */
export const CIFAR_IMAGE_BYTES = 3 * 32 * 32;
/** Bytes of one binary record: label + image. */
export const CIFAR_RECORD_BYTES = 1 + CIFAR_IMAGE_BYTES;

/** The batch files of each split, in the order they are concatenated. */
export const CIFAR_BIN_FILES: Record<Split, string[]> = {
  train: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`),
  test: ["test_batch.bin"],
};

/** Images and labels of one or more batches. */
export interface CifarBatches {
  images: Uint8Array;
  labels: Uint8Array;
}

/**
 * Reads binary CIFAR-10 batch files and concatenates them in the given order.
 *
 * @param paths the batch files
 * @returns NCHW uint8 images and their labels (checked to be below 10)
 * @throws DatasetError when a file is missing, empty, not a whole number of
 *   records, or holds a label above 9
 */
export async function readCifarBinBatches(paths: string[]): Promise<CifarBatches> {
  const files: Uint8Array[] = [];
  let count = 0;
  for (const path of paths) {
    const bytes = await readFileOrThrow(path);
    if (bytes.length === 0 || bytes.length % CIFAR_RECORD_BYTES !== 0) {
      throw new DatasetError(
        `size ${bytes.length} is not a whole number of ${CIFAR_RECORD_BYTES}-byte records ` +
          `(truncated or not a CIFAR-10 binary batch)`,
        path,
      );
    }
    files.push(bytes);
    count += bytes.length / CIFAR_RECORD_BYTES;
  }
  const images = new Uint8Array(count * CIFAR_IMAGE_BYTES);
  const labels = new Uint8Array(count);
  let n = 0;
  for (let f = 0; f < files.length; f++) {
    const bytes = files[f];
    for (let off = 0; off < bytes.length; off += CIFAR_RECORD_BYTES, n++) {
      const label = bytes[off];
      if (label > 9) {
        throw new DatasetError(
          `label ${label} of record ${off / CIFAR_RECORD_BYTES} is out of range (expected 0..9)`,
          paths[f],
        );
      }
      labels[n] = label;
      images.set(bytes.subarray(off + 1, off + CIFAR_RECORD_BYTES), n * CIFAR_IMAGE_BYTES);
    }
    files[f] = new Uint8Array(0); // let the file's buffer go before the next one is copied
  }
  return { images, labels };
}
