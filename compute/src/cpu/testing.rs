//! Shared helpers for the convolution kernels' tests.

use crate::geometry::ConvGeom;

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

/// Fails a test of the AVX-512 kernels that runs below that level.
///
/// Such tests are named `avx512_*`, compiled as ignored where the build
/// machine lacks AVX-512 (see `build.rs`) and skipped by name where
/// `MACER_SIMD` lowers the level (`scripts/rust_tests.ts`); this catches a
/// test binary built on one CPU and run on another, or run with
/// `--include-ignored` or a lower `MACER_SIMD`, which would otherwise test
/// the portable fallback under the AVX-512 test's name.
pub fn require_avx512() {
    assert!(
        super::simd::level() >= super::simd::AVX512,
        "this test needs the AVX-512 level (F and VL), and runs at {}: the CPU lacks it, \
         the test binary was built on another CPU or run with --include-ignored, or \
         MACER_SIMD lowers the level",
        super::simd::level_name(super::simd::level())
    );
}

/// Whether the CPU has AVX2 and FMA, for the tests of the AVX2 kernels
/// (which run whatever level `MACER_SIMD` sets); says so where it lacks them.
pub fn cpu_has_avx2() -> bool {
    let has = super::simd::detected_level() >= super::simd::AVX2;
    if !has {
        eprintln!("skipped: this CPU lacks AVX2 and FMA");
    }
    has
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

/// The input after a batch norm's affine map and a ReLU, per channel:
/// `max(x * scale[c] + shift[c], 0)`, written out plainly.
pub fn reference_prologue(g: &ConvGeom, x: &[f32], scale: &[f32], shift: &[f32]) -> Vec<f32> {
    let plane = g.h * g.w;
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = (i / plane) % g.c;
            (v * scale[c] + shift[c]).max(0.0)
        })
        .collect()
}

/// Direct convolution (no bias) in f64.
pub fn reference_forward(g: &ConvGeom, x: &[f32], w: &[f32]) -> Vec<f64> {
    let mut y = vec![0f64; g.n * g.o * g.p()];
    for n in 0..g.n {
        for o in 0..g.o {
            for oy in 0..g.ho {
                for ox in 0..g.wo {
                    let mut acc = 0f64;
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
                                acc += x[xi] as f64 * w[wi] as f64;
                            }
                        }
                    }
                    y[((n * g.o + o) * g.ho + oy) * g.wo + ox] = acc;
                }
            }
        }
    }
    y
}

/// Where row `(c, i, j)`, column `(oy, ox)` of one image's im2col matrix
/// reads the image `[C, H, W]`: `None` in the zero padding.
pub fn unfolded_source(g: &ConvGeom, row: usize, col: usize) -> Option<usize> {
    let (c, i, j) = (row / (g.kh * g.kw), (row / g.kw) % g.kh, row % g.kw);
    let (oy, ox) = (col / g.wo, col % g.wo);
    let iy = (oy * g.stride + i) as isize - g.pad as isize;
    let ix = (ox * g.stride + j) as isize - g.pad as isize;
    let inside = iy >= 0 && ix >= 0 && iy < g.h as isize && ix < g.w as isize;
    inside.then(|| (c * g.h + iy as usize) * g.w + ix as usize)
}
