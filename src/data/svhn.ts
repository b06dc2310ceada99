/**
 * SVHN cropped digits (`train_32x32.mat`, `test_32x32.mat`): MAT v5 files with
 * `X`, uint8 32x32x3xN in MATLAB's column-major order (row varies fastest),
 * and `y`, Nx1 labels 1..10 where 10 stands for the digit 0 (mapped to 0, as
 * torchvision does).
 *
 * @module
 */
import { DatasetError } from "./errors.ts";
import { isFile, joinPath } from "./_files.ts";
import { readMatV5 } from "./mat_v5.ts";
import type { ImageDataset, Split } from "./types.ts";

/** The file of each split. */
export const SVHN_FILES: Record<Split, string> = {
  train: "train_32x32.mat",
  test: "test_32x32.mat",
};

/**
 * Reorders images in place from MATLAB's per-image layout [w][h] (column-major
 * H x W x C: offset h + H*w + H*W*c) to NCHW (offset c*H*W + h*W + w). Each
 * image is contiguous in both layouts, so one image-sized scratch suffices.
 */
export function columnMajorToNchw(
  data: Uint8Array,
  count: number,
  channels: number,
  height: number,
  width: number,
): void {
  const plane = height * width;
  const scratch = new Uint8Array(plane * channels);
  for (let n = 0; n < count; n++) {
    const img = data.subarray(n * plane * channels, (n + 1) * plane * channels);
    scratch.set(img);
    for (let c = 0; c < channels; c++) {
      const base = c * plane;
      for (let w = 0; w < width; w++) {
        const src = base + w * height;
        for (let h = 0; h < height; h++) img[base + h * width + w] = scratch[src + h];
      }
    }
  }
}

/**
 * Parses SVHN's `X` and `y` variables of one .mat file into a dataset.
 *
 * @param path the .mat file
 * @param split which split it is
 * @throws DatasetError when a variable is missing, mis-shaped or a label is
 *   outside 0..10
 */
export async function readSvhnMat(path: string, split: Split): Promise<ImageDataset> {
  const vars = await readMatV5(path, ["X", "y"]);
  const X = vars.get("X");
  const y = vars.get("y");
  if (X === undefined) throw new DatasetError("no variable 'X' (the images)", path);
  if (y === undefined) throw new DatasetError("no variable 'y' (the labels)", path);
  const d = X.dims;
  if (d.length !== 4 || d[0] !== 32 || d[1] !== 32 || d[2] !== 3) {
    throw new DatasetError(`'X' has dimensions ${d.join("x")}, expected 32x32x3xN`, path);
  }
  if (!(X.data instanceof Uint8Array)) {
    throw new DatasetError(`'X' is ${X.className} stored as non-uint8 data, expected uint8`, path);
  }
  const count = d[3];
  if (count === 0) throw new DatasetError("'X' holds no images", path);
  if (y.data.length !== count || y.dims.filter((n) => n !== 1).length > 1) {
    throw new DatasetError(
      `'y' has dimensions ${y.dims.join("x")} but 'X' holds ${count} images`,
      path,
    );
  }
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const v = y.data[i];
    if (!Number.isInteger(v) || v < 0 || v > 10) {
      throw new DatasetError(`label ${v} of image ${i} is out of range (expected 1..10)`, path);
    }
    labels[i] = v === 10 ? 0 : v;
  }
  columnMajorToNchw(X.data, count, 3, 32, 32);
  return {
    name: "svhn",
    split,
    count,
    channels: 3,
    height: 32,
    width: 32,
    classes: 10,
    images: X.data,
    labels,
  };
}

/**
 * Loads one split of SVHN from `<root>/<split>_32x32.mat`.
 *
 * @param root the folder holding the .mat files
 * @param split "train" or "test"
 */
export async function loadSvhn(root: string, split: Split): Promise<ImageDataset> {
  const path = joinPath(root, SVHN_FILES[split]);
  if (!(await isFile(path))) {
    throw new DatasetError(
      `svhn ${split} split: ${path} not found (leave out --offline to download it)`,
    );
  }
  return await readSvhnMat(path, split);
}
