/**
 * Training augmentation for 32x32 color datasets (CIFAR-10, SVHN), as MACER
 * and torchvision do it: a random crop of the original size from the image
 * zero-padded by 4 pixels on each side, then a horizontal flip with
 * probability 1/2. Written straight into the float batch, scaled to [0, 1].
 *
 * @module
 */

/** A source of uniform numbers in [0, 1), such as a seeded `seedrandom`. */
export type Rng = () => number;

/** Zero padding of the random crop, in pixels. */
export const CROP_PADDING = 4;

/** The random choices made for one image. */
export interface CropFlip {
  /** Offset of the crop window in the padded image, 0..2*padding. */
  dy: number;
  dx: number;
  flip: boolean;
}

/**
 * Draws one image's crop offsets and flip, in this order: dy, dx, flip
 * (three calls to `rng`).
 *
 * @param rng uniform source
 * @param padding the crop padding
 */
export function drawCropFlip(rng: Rng, padding = CROP_PADDING): CropFlip {
  const span = 2 * padding + 1;
  const dy = Math.floor(rng() * span);
  const dx = Math.floor(rng() * span);
  return { dy, dx, flip: rng() < 0.5 };
}

/**
 * Writes one augmented image into `out` at `outOffset` as float32 in [0, 1].
 * Output pixel (y, x) is padded pixel (y + dy, x' + dx) with x' = W-1-x when
 * flipped, else x; padded pixels outside the original are 0.
 *
 * @param src uint8 pixels, CHW
 * @param srcOffset where the image starts in `src`
 * @param out destination batch
 * @param outOffset where the image starts in `out`
 * @param c channels
 * @param h height
 * @param w width
 * @param cf the crop offsets and flip
 * @param padding the crop padding
 */
export function cropFlipInto(
  src: Uint8Array,
  srcOffset: number,
  out: Float32Array,
  outOffset: number,
  c: number,
  h: number,
  w: number,
  cf: CropFlip,
  padding = CROP_PADDING,
): void {
  const sy = cf.dy - padding;
  const sx = cf.dx - padding;
  for (let ch = 0; ch < c; ch++) {
    const plane = srcOffset + ch * h * w;
    const oplane = outOffset + ch * h * w;
    for (let y = 0; y < h; y++) {
      const yy = y + sy;
      const orow = oplane + y * w;
      if (yy < 0 || yy >= h) {
        out.fill(0, orow, orow + w);
        continue;
      }
      const row = plane + yy * w;
      for (let x = 0; x < w; x++) {
        const xx = (cf.flip ? w - 1 - x : x) + sx;
        out[orow + x] = xx < 0 || xx >= w ? 0 : src[row + xx] / 255;
      }
    }
  }
}
