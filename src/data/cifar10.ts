/**
 * CIFAR-10 from either distribution: the binary version in
 * `<root>/cifar-10-batches-bin/` (preferred: no parsing at all) or the python
 * version in `<root>/cifar-10-batches-py/`. The batch files may also sit in
 * the root itself.
 *
 * @module
 */
import { DatasetError } from "./errors.ts";
import { isFile, joinPath } from "./_files.ts";
import { CIFAR_BIN_FILES, readCifarBinBatches } from "./cifar_bin.ts";
import { CIFAR_PY_FILES, readCifarPickleBatches } from "./cifar_pickle.ts";
import type { ImageDataset, Split } from "./types.ts";

/** Folder names of the two distributions. */
export const CIFAR_BIN_DIR = "cifar-10-batches-bin";
export const CIFAR_PY_DIR = "cifar-10-batches-py";

/** Where a split was found and in which version. */
export interface CifarLocation {
  version: "bin" | "py";
  paths: string[];
}

async function allExist(paths: string[]): Promise<boolean> {
  for (const p of paths) if (!(await isFile(p))) return false;
  return true;
}

/**
 * Finds the batch files of a split; undefined when neither version is there.
 *
 * @param root the dataset root
 * @param split "train" or "test"
 */
export async function locateCifar10(
  root: string,
  split: Split,
): Promise<CifarLocation | undefined> {
  for (const dir of [joinPath(root, CIFAR_BIN_DIR), root]) {
    const paths = CIFAR_BIN_FILES[split].map((f) => joinPath(dir, f));
    if (await allExist(paths)) return { version: "bin", paths };
  }
  for (const dir of [joinPath(root, CIFAR_PY_DIR), root]) {
    const paths = CIFAR_PY_FILES[split].map((f) => joinPath(dir, f));
    if (await allExist(paths)) return { version: "py", paths };
  }
  return undefined;
}

/**
 * Loads one split of CIFAR-10 (binary version first, then python version).
 *
 * @param root the dataset root
 * @param split "train" or "test"
 * @throws DatasetError when neither version is complete, or a file is bad
 */
export async function loadCifar10(root: string, split: Split): Promise<ImageDataset> {
  const loc = await locateCifar10(root, split);
  if (loc === undefined) {
    throw new DatasetError(
      `cifar10 ${split} split: neither ${joinPath(root, CIFAR_BIN_DIR)}/` +
        `{${CIFAR_BIN_FILES[split].join(",")}} nor ${joinPath(root, CIFAR_PY_DIR)}/` +
        `{${CIFAR_PY_FILES[split].join(",")}} is complete (leave out --offline to download it)`,
    );
  }
  const b = loc.version === "bin"
    ? await readCifarBinBatches(loc.paths)
    : await readCifarPickleBatches(loc.paths);
  return {
    name: "cifar10",
    split,
    count: b.labels.length,
    channels: 3,
    height: 32,
    width: 32,
    classes: 10,
    images: b.images,
    labels: b.labels,
  };
}
