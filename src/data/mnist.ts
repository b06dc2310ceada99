/**
 * MNIST and Fashion-MNIST from IDX files, gzipped or not, found either in the
 * root folder itself or in torchvision's `<root>/MNIST/raw/` and
 * `<root>/FashionMNIST/raw/` layout.
 *
 * @module
 */
import { DatasetError } from "./errors.ts";
import { readIdxFile } from "./idx.ts";
import { isFile, joinPath } from "./_files.ts";
import { checkLabels } from "./_validate.ts";
import type { ImageDataset, Split } from "./types.ts";

/** The two IDX-based datasets. */
export type IdxDatasetName = "mnist" | "fashion-mnist";

/** torchvision's folder name under the root for each dataset. */
export const TORCHVISION_FOLDER: Record<IdxDatasetName, string> = {
  "mnist": "MNIST",
  "fashion-mnist": "FashionMNIST",
};

/** File stems of each split (the same for both datasets). */
export const IDX_FILES: Record<Split, { images: string; labels: string }> = {
  train: { images: "train-images-idx3-ubyte", labels: "train-labels-idx1-ubyte" },
  test: { images: "t10k-images-idx3-ubyte", labels: "t10k-labels-idx1-ubyte" },
};

/** Folders searched, in order: the root, then torchvision's raw folder. */
export function idxFolders(name: IdxDatasetName, root: string): string[] {
  return [root, joinPath(root, TORCHVISION_FOLDER[name], "raw")];
}

/** Finds `stem` or `stem.gz` in the candidate folders; undefined when absent. */
async function findIdx(folders: string[], stem: string): Promise<string | undefined> {
  for (const dir of folders) {
    for (const file of [stem, `${stem}.gz`]) {
      const path = joinPath(dir, file);
      if (await isFile(path)) return path;
    }
  }
  return undefined;
}

/**
 * True when both files of a split can be found under `root`.
 */
export async function hasIdxSplit(
  name: IdxDatasetName,
  root: string,
  split: Split,
): Promise<boolean> {
  const folders = idxFolders(name, root);
  const f = IDX_FILES[split];
  return (await findIdx(folders, f.images)) !== undefined &&
    (await findIdx(folders, f.labels)) !== undefined;
}

/**
 * Loads one split of MNIST or Fashion-MNIST.
 *
 * @param name "mnist" or "fashion-mnist"
 * @param root the folder holding the IDX files (or torchvision's layout)
 * @param split "train" or "test"
 * @throws DatasetError when a file is missing, malformed or inconsistent
 */
export async function loadIdxDataset(
  name: IdxDatasetName,
  root: string,
  split: Split,
): Promise<ImageDataset> {
  const folders = idxFolders(name, root);
  const f = IDX_FILES[split];
  const imagesPath = await findIdx(folders, f.images);
  const labelsPath = await findIdx(folders, f.labels);
  for (const [stem, path] of [[f.images, imagesPath], [f.labels, labelsPath]]) {
    if (path === undefined) {
      throw new DatasetError(
        `${name} ${split} split: ${stem}[.gz] not found in ${folders.join(" or ")} ` +
          `(leave out --offline to download it)`,
      );
    }
  }
  const images = await readIdxFile(imagesPath!, 3);
  const labels = await readIdxFile(labelsPath!, 1);
  const [count, height, width] = images.dims;
  if (labels.dims[0] !== count) {
    throw new DatasetError(
      `holds ${labels.dims[0]} labels but ${imagesPath} holds ${count} images`,
      labelsPath,
    );
  }
  if (count === 0) throw new DatasetError("holds no images", imagesPath);
  checkLabels(labels.data, 10, labelsPath!);
  return {
    name,
    split,
    count,
    channels: 1,
    height,
    width,
    classes: 10,
    images: images.data,
    labels: labels.data,
  };
}
