/**
 * Float64 reference forwards, written independently of the library's
 * kernels, for finite-difference gradient checks.
 */

export type Arr = Float64Array;

/** Deterministic test data: a smooth function of the index, rounded to f32. */
export function data(n: number, seed: number, scale = 1, shift = 0): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.fround(scale * Math.sin(0.731 * i + seed) + shift);
  return out;
}

export function conv2d(
  x: Arr,
  [n, c, h, w]: number[],
  wt: Arr,
  [o, , kh, kw]: number[],
  b: Arr | null,
  stride: number,
  pad: number,
): Arr {
  const ho = Math.floor((h + 2 * pad - kh) / stride) + 1;
  const wo = Math.floor((w + 2 * pad - kw) / stride) + 1;
  const y = new Float64Array(n * o * ho * wo);
  for (let ni = 0; ni < n; ni++) {
    for (let oi = 0; oi < o; oi++) {
      for (let oy = 0; oy < ho; oy++) {
        for (let ox = 0; ox < wo; ox++) {
          let s = b ? b[oi] : 0;
          for (let ci = 0; ci < c; ci++) {
            for (let i = 0; i < kh; i++) {
              for (let j = 0; j < kw; j++) {
                const iy = oy * stride - pad + i, ix = ox * stride - pad + j;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                s += x[((ni * c + ci) * h + iy) * w + ix] * wt[((oi * c + ci) * kh + i) * kw + j];
              }
            }
          }
          y[((ni * o + oi) * ho + oy) * wo + ox] = s;
        }
      }
    }
  }
  return y;
}

export function linear(x: Arr, n: number, fin: number, w: Arr, fout: number, b: Arr | null): Arr {
  const y = new Float64Array(n * fout);
  for (let r = 0; r < n; r++) {
    for (let o = 0; o < fout; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < fin; i++) s += x[r * fin + i] * w[o * fin + i];
      y[r * fout + o] = s;
    }
  }
  return y;
}

/** Training-mode batch norm with biased batch variance. */
export function batchNorm(x: Arr, [n, c, h, w]: number[], g: Arr, b: Arr, eps: number): Arr {
  const y = new Float64Array(x.length);
  const hw = h * w;
  for (let ci = 0; ci < c; ci++) {
    let mean = 0, v = 0;
    for (let ni = 0; ni < n; ni++) for (let p = 0; p < hw; p++) mean += x[(ni * c + ci) * hw + p];
    mean /= n * hw;
    for (let ni = 0; ni < n; ni++) {
      for (let p = 0; p < hw; p++) v += (x[(ni * c + ci) * hw + p] - mean) ** 2;
    }
    v /= n * hw;
    for (let ni = 0; ni < n; ni++) {
      for (let p = 0; p < hw; p++) {
        const at = (ni * c + ci) * hw + p;
        y[at] = ((x[at] - mean) / Math.sqrt(v + eps)) * g[ci] + b[ci];
      }
    }
  }
  return y;
}

export function pool(
  x: Arr,
  [n, c, h, w]: number[],
  k: number,
  stride: number,
  kind: "max" | "avg",
): Arr {
  const ho = Math.floor((h - k) / stride) + 1, wo = Math.floor((w - k) / stride) + 1;
  const y = new Float64Array(n * c * ho * wo);
  for (let pl = 0; pl < n * c; pl++) {
    for (let oy = 0; oy < ho; oy++) {
      for (let ox = 0; ox < wo; ox++) {
        let acc = kind === "max" ? -Infinity : 0;
        for (let i = 0; i < k; i++) {
          for (let j = 0; j < k; j++) {
            const v = x[pl * h * w + (oy * stride + i) * w + ox * stride + j];
            acc = kind === "max" ? Math.max(acc, v) : acc + v / (k * k);
          }
        }
        y[(pl * ho + oy) * wo + ox] = acc;
      }
    }
  }
  return y;
}

/** Softmax or log-softmax of `scale * x` over the last dim of [rows, cols]. */
export function softmax(x: Arr, cols: number, scale: number, log: boolean): Arr {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / cols; r++) {
    const row = Array.from(x.subarray(r * cols, (r + 1) * cols), (v) => v * scale);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    row.forEach((v, i) => y[r * cols + i] = log ? v - lse : Math.exp(v - lse));
  }
  return y;
}
