//! Shared helpers for the convolution kernels' tests.

use super::conv::ConvGeom;

/// `n` values in `[-1, 1)`, a fixed pattern per `seed`.
pub fn data(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0) - 1.0)
        .collect()
}

/// Geometry of a convolution with a square `k x k` kernel.
#[allow(clippy::too_many_arguments)]
pub fn geom(
    n: usize,
    c: usize,
    o: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    pad: usize,
) -> ConvGeom {
    ConvGeom {
        n,
        c,
        h,
        w,
        o,
        kh: k,
        kw: k,
        stride,
        pad,
        ho: (h + 2 * pad - k) / stride + 1,
        wo: (w + 2 * pad - k) / stride + 1,
    }
}

/// `f` run on a pool of one thread.
pub fn on_one_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(f)
}

/// Asserts `|got - want| < rel * max(1, max |want|)` elementwise.
pub fn assert_close_scaled(got: &[f32], want: &[f64], rel: f64, what: &str) {
    let scale = want.iter().fold(1f64, |m, v| m.max(v.abs()));
    for (i, (a, e)) in got.iter().zip(want).enumerate() {
        assert!(
            (*a as f64 - e).abs() < rel * scale,
            "{what}: {a} vs {e} at {i}"
        );
    }
}

/// Direct gradients in f64: `(dx, dw, db)`.
pub fn reference_grads(g: &ConvGeom, x: &[f32], w: &[f32], dy: &[f32]) -> [Vec<f64>; 3] {
    let mut dx = vec![0f64; x.len()];
    let mut dw = vec![0f64; w.len()];
    let mut db = vec![0f64; g.o];
    for n in 0..g.n {
        for o in 0..g.o {
            for oy in 0..g.ho {
                for ox in 0..g.wo {
                    let d = dy[((n * g.o + o) * g.ho + oy) * g.wo + ox] as f64;
                    db[o] += d;
                    for c in 0..g.c {
                        for i in 0..g.kh {
                            for j in 0..g.kw {
                                let iy = (oy * g.stride + i) as isize - g.pad as isize;
                                let ix = (ox * g.stride + j) as isize - g.pad as isize;
                                if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize {
                                    continue;
                                }
                                let xi = ((n * g.c + c) * g.h + iy as usize) * g.w + ix as usize;
                                let wi = ((o * g.c + c) * g.kh + i) * g.kw + j;
                                dw[wi] += x[xi] as f64 * d;
                                dx[xi] += w[wi] as f64 * d;
                            }
                        }
                    }
                }
            }
        }
    }
    [dx, dw, db]
}
