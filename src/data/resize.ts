/**
 * The ImageNet evaluation transform of Cohen et al.'s `datasets.py`
 * (`Resize(256)`, `CenterCrop(224)` on PIL images) on interleaved 8-bit RGB.
 *
 * torchvision's `Resize` on a PIL image is Pillow's `Image.resize` with the
 * bilinear filter, which antialiases when shrinking: the triangle filter is
 * stretched by the scale factor. This is Pillow's algorithm (Resample.c):
 * per output pixel, weights of the stretched filter normalised to sum 1 and
 * rounded to 22-bit fixed point, a horizontal pass rounded to 8 bits, then a
 * vertical pass; so it gives Pillow's bytes, not just values close to them.
 *
 * @module
 */

/** Pillow's fixed-point precision of the resampling weights (32 - 8 - 2 bits). */
const PRECISION_BITS = 22;
const ONE = 2 ** PRECISION_BITS;

/** Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bilinear filter. */
function coefficients(inSize: number, outSize: number) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 1 * filterscale; // the bilinear filter's support is 1
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Float64Array(outSize * ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    const w = new Float64Array(xmax);
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      w[x] = t < 1 ? 1 - t : 0;
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0 ? w[x] / ww : w[x];
      kk[xx * ksize + x] = k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE);
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function clip8(v: number): number {
  if (v >= ONE * 256) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / ONE);
}

/**
 * Pillow's `Image.resize((outW, outH), BILINEAR)` of an RGB image.
 *
 * @param rgb interleaved RGB bytes, `w * h * 3`
 * @param w input width
 * @param h input height
 * @param outW output width
 * @param outH output height
 * @returns interleaved RGB bytes, `outW * outH * 3`
 */
export function resizeBilinear(
  rgb: Uint8Array,
  w: number,
  h: number,
  outW: number,
  outH: number,
): Uint8Array {
  let src = rgb, srcW = w;
  if (outW !== w) {
    // Horizontal pass over every row (Pillow limits it to the rows the vertical pass reads;
    // the rows it computes are the same).
    const { ksize, bounds, kk } = coefficients(w, outW);
    const out = new Uint8Array(outW * h * 3);
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < outW; xx++) {
        const xmin = bounds[2 * xx], xmax = bounds[2 * xx + 1];
        for (let c = 0; c < 3; c++) {
          let ss = ONE / 2;
          for (let x = 0; x < xmax; x++) {
            ss += src[(y * w + x + xmin) * 3 + c] * kk[xx * ksize + x];
          }
          out[(y * outW + xx) * 3 + c] = clip8(ss);
        }
      }
    }
    src = out;
    srcW = outW;
  }
  if (outH !== h) {
    const { ksize, bounds, kk } = coefficients(h, outH);
    const out = new Uint8Array(srcW * outH * 3);
    for (let yy = 0; yy < outH; yy++) {
      const ymin = bounds[2 * yy], ymax = bounds[2 * yy + 1];
      for (let x = 0; x < srcW; x++) {
        for (let c = 0; c < 3; c++) {
          let ss = ONE / 2;
          for (let y = 0; y < ymax; y++) {
            ss += src[((y + ymin) * srcW + x) * 3 + c] * kk[yy * ksize + y];
          }
          out[(yy * srcW + x) * 3 + c] = clip8(ss);
        }
      }
    }
    src = out;
  }
  return src === rgb ? rgb.slice() : src;
}

/** torchvision's `Resize(size)` target for an int size: the short side becomes `size`. */
export function shortSideSize(w: number, h: number, size: number): [number, number] {
  const [short, long] = w <= h ? [w, h] : [h, w];
  const newLong = Math.trunc((size * long) / short);
  return w <= h ? [size, newLong] : [newLong, size];
}

/** Python's `round` (half to even) of x.5 offsets, as torchvision's `center_crop` rounds. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * `Resize(resize)` then `CenterCrop(crop)` then the channel-first layout of
 * `ToTensor` (bytes, not yet divided by 255), as Cohen et al.'s ImageNet test
 * transform.
 *
 * @param rgb interleaved RGB bytes, `w * h * 3`
 * @returns `3 * crop * crop` bytes, channel-major
 * @throws {RangeError} when the resized image is smaller than the crop (no padding here)
 */
export function resizeCenterCrop(
  rgb: Uint8Array,
  w: number,
  h: number,
  resize = 256,
  crop = 224,
): Uint8Array {
  const [rw, rh] = shortSideSize(w, h, resize);
  const resized = resizeBilinear(rgb, w, h, rw, rh);
  if (rw < crop || rh < crop) {
    throw new RangeError(`a ${w}x${h} image resizes to ${rw}x${rh}, smaller than ${crop}`);
  }
  const top = roundHalfEven((rh - crop) / 2), left = roundHalfEven((rw - crop) / 2);
  const out = new Uint8Array(3 * crop * crop);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < crop; y++) {
      for (let x = 0; x < crop; x++) {
        out[(c * crop + y) * crop + x] = resized[((top + y) * rw + left + x) * 3 + c];
      }
    }
  }
  return out;
}
