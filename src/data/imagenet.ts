/**
 * ImageNet's validation split as people keep it: an ImageFolder tree
 * `<root>/val/<wnid>/*.JPEG` (what valprep.sh leaves), read as torchvision's
 * `ImageFolder` with Cohen et al.'s test transform: classes are the wnid
 * folders in sorted order (label = position), images the JPEG files of each
 * folder in sorted order, each resized to 256 on its short side (Pillow's
 * antialiased bilinear) and centre-cropped to 224x224.
 *
 * 50,000 decoded images would take 7.5 GB, so images are decoded when asked
 * for (`decode`), not when the split is loaded; the split's listing is read
 * at once, so missing folders and files that are not JPEG are found before
 * any work. Decoding is `jpeg-js`; a corrupt or truncated file is an error
 * naming it.
 *
 * @module
 */
import jpeg from "jpeg-js";
import { DatasetError } from "./errors.ts";
import { isDir, joinPath } from "./_files.ts";
import { resizeCenterCrop } from "./resize.ts";
import type { ImageDataset, Split } from "./types.ts";

/** Classes of an ImageNet model (Cohen's `get_num_classes`), whatever the tree holds. */
export const IMAGENET_CLASSES = 1000;
/** Side of the centre crop. */
export const IMAGENET_SIZE = 224;

const JPEG = /\.(jpe?g)$/i;
/** Extensions torchvision's ImageFolder takes as images, which we cannot decode. */
const OTHER_IMAGES = /\.(png|ppm|bmp|pgm|tif|tiff|webp)$/i;

async function sortedEntries(dir: string): Promise<Deno.DirEntry[]> {
  const entries: Deno.DirEntry[] = [];
  try {
    for await (const e of Deno.readDir(dir)) entries.push(e);
  } catch (e) {
    throw new DatasetError(`cannot list the folder (${(e as Error).message})`, dir);
  }
  // Python sorts str by code point; for these names (ASCII) that is UTF-16 order.
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The image files of the tree and their labels, in ImageFolder's order. */
export async function listImagenet(
  root: string,
): Promise<{ files: string[]; labels: number[]; wnids: string[] }> {
  const val = joinPath(root, "val");
  if (!(await isDir(val))) {
    throw new DatasetError(
      "no ImageNet validation folder: expected <root>/val/<wnid>/*.JPEG (an ImageFolder " +
        "tree; ImageNet is not downloaded, its images are licensed to registered users)",
      val,
    );
  }
  const wnids: string[] = [];
  const files: string[] = [];
  const labels: number[] = [];
  for (const e of await sortedEntries(val)) {
    const dir = joinPath(val, e.name);
    if (!e.isDirectory && !(e.isSymlink && await isDir(dir))) continue;
    const label = wnids.length;
    wnids.push(e.name);
    let found = 0;
    for (const f of await sortedEntries(dir)) {
      const path = joinPath(dir, f.name);
      if (f.isDirectory) continue;
      if (OTHER_IMAGES.test(f.name)) {
        throw new DatasetError("only JPEG images are read (torchvision would take this one)", path);
      }
      if (!JPEG.test(f.name)) continue;
      files.push(path);
      labels.push(label);
      found++;
    }
    if (found === 0) throw new DatasetError("a class folder with no JPEG file", dir);
  }
  if (wnids.length === 0) throw new DatasetError("no class folders (<wnid>/) in it", val);
  if (wnids.length > IMAGENET_CLASSES) {
    throw new DatasetError(
      `${wnids.length} class folders, more than ImageNet's ${IMAGENET_CLASSES}`,
      val,
    );
  }
  return { files, labels, wnids };
}

/**
 * Decodes one JPEG file and applies Cohen's test transform.
 *
 * @param path the file (named in errors)
 * @param bytes its contents
 * @returns `3 * 224 * 224` bytes, channel-major
 * @throws DatasetError for a corrupt, truncated or too small file
 */
export function decodeImagenetJpeg(path: string, bytes: Uint8Array): Uint8Array {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) {
    throw new DatasetError("not a JPEG file (no start-of-image marker)", path);
  }
  let image;
  try {
    image = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      tolerantDecoding: false,
      maxResolutionInMP: 200,
      maxMemoryUsageInMB: 1024,
    });
  } catch (e) {
    throw new DatasetError(`corrupt or truncated JPEG (${(e as Error).message})`, path);
  }
  if (!hasEndMarker(bytes)) {
    throw new DatasetError("truncated JPEG (no end-of-image marker)", path);
  }
  try {
    return resizeCenterCrop(image.data, image.width, image.height, 256, IMAGENET_SIZE);
  } catch (e) {
    throw new DatasetError((e as Error).message, path);
  }
}

/** Whether the end-of-image marker FF D9 ends the data (trailing padding allowed). */
function hasEndMarker(bytes: Uint8Array): boolean {
  for (let i = bytes.length - 1; i > 0 && i >= bytes.length - 4096; i--) {
    if (bytes[i] === 0xd9 && bytes[i - 1] === 0xff) return true;
  }
  return false;
}

/**
 * The validation split of an ImageNet ImageFolder tree.
 *
 * @param root the folder holding `val/`
 * @param split only "test" (the validation images): training on ImageNet is not supported
 * @returns a dataset whose images are decoded on demand
 * @throws DatasetError for a missing or malformed tree
 */
export async function loadImagenet(root: string, split: Split): Promise<ImageDataset> {
  if (split !== "test") {
    throw new DatasetError(
      "imagenet: only the validation split is read (certification and prediction); " +
        "training on ImageNet is not supported",
    );
  }
  const { files, labels } = await listImagenet(root);
  const size = 3 * IMAGENET_SIZE * IMAGENET_SIZE;
  return {
    name: "imagenet",
    split,
    count: files.length,
    channels: 3,
    height: IMAGENET_SIZE,
    width: IMAGENET_SIZE,
    classes: IMAGENET_CLASSES,
    images: new Uint8Array(0),
    labels: Uint16Array.from(labels),
    decode: (index: number) => {
      const path = files[index];
      let bytes: Uint8Array;
      try {
        bytes = Deno.readFileSync(path);
      } catch (e) {
        throw new DatasetError(`cannot read the image (${(e as Error).message})`, path);
      }
      const px = decodeImagenetJpeg(path, bytes);
      if (px.length !== size) throw new DatasetError("decoded to the wrong size", path);
      return px;
    },
  };
}
