//! Winograd F(4x4, 3x3) for stride-1 3x3 convolutions: each 4x4 output
//! tile comes from a 6x6 input tile through 36 products per channel pair
//! instead of 144 (F(2x2, 3x3) would need 64 for the same outputs).
//!
//! Interpolation points 0, 1, -1, 2, -2 and infinity (Lavin & Gray):
//! `V = B^T d B`, `U = G g G^T` (computed in f64, then rounded),
//! `M[xi] = U[xi] * V[xi]` (one GEMM `[O, C] x [C, tiles]` per position `xi`
//! of the 6x6 transformed tile, on the AVX-512 kernel), and the output tile
//! is `A^T M A`. Tiles of several images form one GEMM so that its columns
//! stay long, grouped by a rule of the shape only, so every output element
//! is a fixed sequence of operations on its inputs whatever the thread
//! count. The data gradient is this forward on the flipped weights; the
//! weight gradient is in [`super::winograd_wgrad`].

use rayon::prelude::*;

use super::gemm512::matmul_nn_ld;
use super::norm::{group_moments, BnGeom, Moments};
use crate::buffers::Scratch;
use crate::geometry::{ConvGeom, Epilogue, Prologue};

/// Whether the Winograd path runs for this geometry (it needs the AVX-512
/// GEMM kernel, and enough channels that the transforms are cheap next to
/// the products).
pub fn applies(g: &ConvGeom) -> bool {
    g.kh == 3
        && g.kw == 3
        && g.stride == 1
        && g.pad <= 2
        && g.c >= 8
        && g.o >= 8
        && g.ho > 0
        && g.wo > 0
        && super::simd::level() >= super::simd::AVX512
}

/// Transform points per tile.
pub(crate) const POINTS: usize = 36;

/// Row stride of the transformed tiles for `t` columns, and the stride of
/// one position's block of `rows` rows: padded by a cache line each so that
/// the transform points' streams do not fall into the same cache sets.
pub(crate) fn strides(t: usize, rows: usize) -> (usize, usize) {
    let ts = t.next_multiple_of(16) + 16;
    (ts, rows * ts + 16)
}

/// The bounds the unsafe input-transform kernels rely on: `nb` images fit in
/// `x`, and [`POINTS`] blocks of `g.c` rows of all the images' tiles fit in `v`.
fn check_input(g: &ConvGeom, (x_len, nb): (usize, usize), v_len: usize, (ts, blk): (usize, usize)) {
    let (th, tw) = grid(g);
    assert!(x_len >= nb * g.c * g.h * g.w && v_len >= POINTS * blk);
    assert!(ts >= nb * th * tw && blk >= g.c * ts);
}

/// The bounds the unsafe output-transform kernels rely on: [`POINTS`] blocks
/// of `g.o` rows of all the images' tiles in `m`, and `nb` images of output
/// (and residual, and `g.o` biases) in place.
fn check_output(
    g: &ConvGeom,
    m_len: usize,
    (ts, blk): (usize, usize),
    (nb, ep, res): (usize, &Epilogue, Option<&[f32]>),
    y_len: usize,
) {
    let (th, tw) = grid(g);
    assert!(ts >= nb * th * tw && blk >= g.o * ts && m_len >= POINTS * blk);
    assert!(y_len >= nb * g.o * g.p() && ep.bias.is_none_or(|b| b.len() >= g.o));
    assert!(res.is_none_or(|r| r.len() >= nb * g.o * g.p()));
}

/// Tile grid of a geometry: `(rows, cols)` of 4x4 output tiles.
pub(crate) fn grid(g: &ConvGeom) -> (usize, usize) {
    (g.ho.div_ceil(4), g.wo.div_ceil(4))
}

/// Images per GEMM: enough tiles for long GEMM rows, few enough that the
/// transformed tiles stay in the core's cache. A function of the shape only.
pub(crate) fn images_per_group(g: &ConvGeom) -> usize {
    let (th, tw) = grid(g);
    let target: usize = if g.c.max(g.o) <= 16 { 128 } else { 64 };
    target.div_ceil(th * tw).clamp(1, g.n.max(1))
}

/// `G v` for a column `v = [a, b, c]` of 3x3 kernels, `L` kernels at a time
/// (lane by lane, so that it compiles to vector arithmetic).
fn g_column<const L: usize>(a: [f64; L], b: [f64; L], c: [f64; L]) -> [[f64; L]; 6] {
    let lanes = |f: &dyn Fn(usize) -> f64| -> [f64; L] { std::array::from_fn(f) };
    [
        lanes(&|l| a[l] / 4.0),
        lanes(&|l| -(a[l] + b[l] + c[l]) / 6.0),
        lanes(&|l| -(a[l] - b[l] + c[l]) / 6.0),
        lanes(&|l| a[l] / 24.0 + b[l] / 12.0 + c[l] / 6.0),
        lanes(&|l| a[l] / 24.0 - b[l] / 12.0 + c[l] / 6.0),
        c,
    ]
}

/// Kernels transformed together by [`weight_transform`].
const LANES: usize = 8;

/// `U[xi][o][c] = (G w[o][c] G^T)[xi]`, computed in f64 (in parallel over
/// the output channels, each into its `[xi][c]` block, [`LANES`] input
/// channels at a time; then copied into point-major order a row at a time).
pub(crate) fn weight_transform(g: &ConvGeom, w: &[f32]) -> Vec<f32> {
    let (o_n, c_n) = (g.o, g.c);
    let uo = o_n * c_n;
    let mut per_out = crate::buffers::uninit_f32(POINTS * uo);
    per_out
        .par_chunks_mut(POINTS * c_n)
        .enumerate()
        .for_each(|(o, out)| {
            for c0 in (0..c_n).step_by(LANES) {
                let n = (c_n - c0).min(LANES);
                // k[i][l]: element i of kernel (o, c0 + l); zero past the end.
                let k: [[f64; LANES]; 9] = std::array::from_fn(|i| {
                    std::array::from_fn(|l| {
                        if l < n {
                            w[(o * c_n + c0 + l) * 9 + i] as f64
                        } else {
                            0.0
                        }
                    })
                });
                // Columns of G g (6 rows x 3 columns), then G along each row.
                let cols: [[[f64; LANES]; 6]; 3] =
                    std::array::from_fn(|j| g_column(k[j], k[3 + j], k[6 + j]));
                for i in 0..6 {
                    let row = g_column(cols[0][i], cols[1][i], cols[2][i]);
                    for (j, v) in row.into_iter().enumerate() {
                        let dst = &mut out[(i * 6 + j) * c_n + c0..][..n];
                        dst.iter_mut().zip(v).for_each(|(d, v)| *d = v as f32);
                    }
                }
            }
        });
    let mut u = crate::buffers::uninit_f32(POINTS * uo);
    u.par_chunks_mut(uo).enumerate().for_each(|(xi, blk)| {
        for (o, row) in blk.chunks_exact_mut(c_n).enumerate() {
            row.copy_from_slice(&per_out[(o * POINTS + xi) * c_n..][..c_n]);
        }
    });
    crate::buffers::recycle_f32(per_out);
    u
}

/// Input tiles of `nb` images into `v[xi][c][t]`, `t` counting tiles image
/// by image, row by row; `(ts, blk)` are the strides from [`strides`].
/// With `pro`, each input value goes through it as it is read (zero
/// padding stays zero).
pub(crate) fn input_transform(
    g: &ConvGeom,
    x: &[f32],
    pro: Option<Prologue>,
    nb: usize,
    v: &mut [f32],
    (ts, blk): (usize, usize),
) {
    let tw = grid(g).1;
    check_input(g, (x.len(), nb), v.len(), (ts, blk));
    assert!(nb * g.c * g.h * g.w <= i32::MAX as usize);
    assert!(pro.is_none_or(|p| p.scale.len() >= g.c && p.shift.len() >= g.c));
    // SAFETY: AVX-512F is present (checked by `applies`); reads stay within
    // the planes (masked loads and gathers) and writes within `v`, as
    // checked above. Rows of at least 8 tiles fill half the lanes or more
    // by rows; narrower images take tiles across rows and images by gathers.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        if (g.h, g.w, g.pad) == (32, 32, 1) {
            x86::input_transform_32x32(g, x.as_ptr(), pro, nb, v.as_mut_ptr(), ts, blk)
        } else if tw >= 8 {
            x86::input_transform(g, x.as_ptr(), pro, nb, v.as_mut_ptr(), ts, blk)
        } else if (g.h, g.w, g.pad) == (16, 16, 1) {
            x86::input_transform_16x16(g, x.as_ptr(), pro, nb, v.as_mut_ptr(), ts, blk)
        } else {
            x86::input_transform_gather(g, x.as_ptr(), pro, nb, v.as_mut_ptr(), ts, blk)
        }
    };
}

/// `y = A^T M A` then the epilogue (bias, residual `res` laid out like `y`,
/// ReLU) for `nb` images.
fn output_transform(
    g: &ConvGeom,
    m: &[f32],
    (ts, blk): (usize, usize),
    nb: usize,
    ep: Epilogue,
    res: Option<&[f32]>,
    y: &mut [f32],
) {
    check_output(g, m.len(), (ts, blk), (nb, &ep, res), y.len());
    let res = res.map(|r| r.as_ptr());
    // SAFETY: as in `input_transform`.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        let (th, tw) = grid(g);
        let whole = g.ho == 4 * th && g.wo == 4 * tw;
        let f = if whole && (tw % 4 == 0 || tw <= 2) {
            x86::output_transform_packed
        } else if tw >= 8 {
            x86::output_transform
        } else {
            x86::output_transform_scatter
        };
        f(
            g,
            m.as_ptr(),
            ts,
            blk,
            nb,
            ep.bias,
            res,
            ep.relu,
            y.as_mut_ptr(),
        )
    };
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    use super::{grid, ConvGeom, Prologue};
    use crate::cpu::lanes::mask as lanes;
    use std::arch::x86_64::*;

    /// A channel's prologue as `(scale, shift)` vectors.
    type Affine = Option<(__m512, __m512)>;

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn affine_of(pro: Option<Prologue>, c: usize) -> Affine {
        pro.map(|p| (_mm512_set1_ps(p.scale[c]), _mm512_set1_ps(p.shift[c])))
    }

    /// `max(v * a + b, 0)` in the lanes of `mask` (rounded as the batch-norm
    /// kernels round it: a product, then a sum), zero in the others.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn apply(v: __m512, mask: __mmask16, aff: Affine) -> __m512 {
        match aff {
            Some((a, b)) => {
                let y = _mm512_add_ps(_mm512_mul_ps(v, a), b);
                _mm512_maskz_max_ps(mask, y, _mm512_setzero_ps())
            }
            None => v,
        }
    }

    /// 16 columns of a row from column `from` on, zero outside `0..w`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load_cols(row: *const f32, w: usize, from: isize, aff: Affine) -> __m512 {
        let lo = (-from).clamp(0, 16) as usize;
        let hi = (w as isize - from).clamp(0, 16) as usize;
        let mask = lanes(hi) & !lanes(lo);
        apply(
            _mm512_maskz_loadu_ps(mask, row.wrapping_offset(from)),
            mask,
            aff,
        )
    }

    /// `B^T d` for one line `d` of six values.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn bt(d: [__m512; 6]) -> [__m512; 6] {
        let (four, five) = (_mm512_set1_ps(4.0), _mm512_set1_ps(5.0));
        let two = _mm512_set1_ps(2.0);
        let s12 = _mm512_add_ps(d[1], d[2]);
        let d12 = _mm512_sub_ps(d[1], d[2]);
        let s34 = _mm512_add_ps(d[3], d[4]);
        let d43 = _mm512_sub_ps(d[4], d[3]);
        let d42 = _mm512_sub_ps(d[4], d[2]);
        let d31 = _mm512_sub_ps(d[3], d[1]);
        [
            _mm512_fnmadd_ps(five, d[2], _mm512_fmadd_ps(four, d[0], d[4])),
            _mm512_fnmadd_ps(four, s12, s34),
            _mm512_fmadd_ps(four, d12, d43),
            _mm512_fmadd_ps(two, d31, d42),
            _mm512_fnmadd_ps(two, d31, d42),
            _mm512_fnmadd_ps(five, d[3], _mm512_fmadd_ps(four, d[1], d[5])),
        ]
    }

    /// Column `j` of a tile of vectors, read by index (mapping the tile
    /// would copy all of it, through the stack, for every column).
    #[inline(always)]
    pub(crate) fn column<const R: usize>(r: &[[__m512; 6]; R], j: usize) -> [__m512; R] {
        std::array::from_fn(|i| r[i][j])
    }

    /// `A^T m` for one line `m` of six values.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn at(m: [__m512; 6]) -> [__m512; 4] {
        let s12 = _mm512_add_ps(m[1], m[2]);
        let d12 = _mm512_sub_ps(m[1], m[2]);
        let s34 = _mm512_add_ps(m[3], m[4]);
        let d34 = _mm512_sub_ps(m[3], m[4]);
        [
            _mm512_add_ps(_mm512_add_ps(m[0], s12), s34),
            _mm512_fmadd_ps(_mm512_set1_ps(2.0), d34, d12),
            _mm512_fmadd_ps(_mm512_set1_ps(4.0), s34, s12),
            _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0), d34, d12), m[5]),
        ]
    }

    /// Row `r` of the padded plane from column `cs` on, as the six columns of
    /// 16 consecutive tiles (`d[j][tx] = row[cs + 4 tx + j]`, zero outside),
    /// transformed along the row: `B^T d`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn row_tiles(
        g: &ConvGeom,
        plane: *const f32,
        aff: Affine,
        r: usize,
        cs: isize,
    ) -> [__m512; 6] {
        let iy = r as isize - g.pad as isize;
        if iy < 0 || iy >= g.h as isize {
            return [_mm512_setzero_ps(); 6];
        }
        let row = plane.add(iy as usize * g.w);
        let l: [__m512; 5] =
            std::array::from_fn(|k| load_cols(row, g.w, cs + 16 * k as isize, aff));
        let mut d = [_mm512_setzero_ps(); 6];
        for (j, dj) in d.iter_mut().take(4).enumerate() {
            let j = j as i32;
            // Lanes 0..8 from the first 32 columns, lanes 8..16 from the next 32.
            let idx = _mm512_set_epi32(
                28 + j,
                24 + j,
                20 + j,
                16 + j,
                12 + j,
                8 + j,
                4 + j,
                j,
                28 + j,
                24 + j,
                20 + j,
                16 + j,
                12 + j,
                8 + j,
                4 + j,
                j,
            );
            let a = _mm512_permutex2var_ps(l[0], idx, l[1]);
            let b = _mm512_permutex2var_ps(l[2], idx, l[3]);
            *dj = _mm512_mask_blend_ps(0xff00, a, b);
        }
        // Columns 4 and 5 of tile tx are columns 0 and 1 of tile tx + 1.
        let next = _mm512_set_epi32(16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1);
        let next1 = _mm512_set_epi32(17, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1);
        d[4] = _mm512_permutex2var_ps(d[0], next, l[4]);
        d[5] = _mm512_permutex2var_ps(d[1], next1, l[4]);
        bt(d)
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn input_transform(
        g: &ConvGeom,
        x: *const f32,
        pro: Option<Prologue>,
        nb: usize,
        v: *mut f32,
        ts: usize,
        blk: usize,
    ) {
        let (th, tw) = grid(g);
        let pad = g.pad as isize;
        for img in 0..nb {
            for c in 0..g.c {
                let plane = x.add((img * g.c + c) * g.h * g.w);
                let aff = affine_of(pro, c);
                let mut tx0 = 0;
                while tx0 < tw {
                    let mask = lanes((tw - tx0).min(16));
                    let cs = 4 * tx0 as isize - pad;
                    let mut r: [[__m512; 6]; 6] = [[_mm512_setzero_ps(); 6]; 6];
                    r[4] = row_tiles(g, plane, aff, 0, cs);
                    r[5] = row_tiles(g, plane, aff, 1, cs);
                    for ty in 0..th {
                        r[0] = r[4];
                        r[1] = r[5];
                        for (k, rk) in r.iter_mut().enumerate().skip(2) {
                            *rk = row_tiles(g, plane, aff, 4 * ty + k, cs);
                        }
                        let base = img * th * tw + ty * tw + tx0;
                        // B^T along each column j of the row-transformed tile.
                        for j in 0..6 {
                            let col = bt(column(&r, j));
                            for (i, o) in col.into_iter().enumerate() {
                                let at = (i * 6 + j) * blk + c * ts + base;
                                _mm512_mask_storeu_ps(v.add(at), mask, o);
                            }
                        }
                    }
                    tx0 += 16;
                }
            }
        }
    }

    /// [`interleave`] undone: lane `4 k + tx` of vector `dx` is lane
    /// `4 tx + dx` of `r[k]`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn deinterleave(r: [__m512; 4]) -> [__m512; 4] {
        let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
        let odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
        let unzip = |a: __m512, b: __m512| {
            (
                _mm512_permutex2var_ps(a, even, b),
                _mm512_permutex2var_ps(a, odd, b),
            )
        };
        let (p_lo, q_lo) = unzip(r[0], r[1]);
        let (p_hi, q_hi) = unzip(r[2], r[3]);
        let (y0, y2) = unzip(p_lo, p_hi);
        let (y1, y3) = unzip(q_lo, q_hi);
        [y0, y1, y2, y3]
    }

    /// Input tiles of 16 x 16 images with padding 1: an image's 4 x 4 tiles
    /// fill one vector (lane `4 ty + tx`). For each row `i` of the tiles'
    /// windows, the image rows `4 ty + i - 1` loaded from columns -1 and 3
    /// and [`deinterleave`]d give the window's six columns (no gathers).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn input_transform_16x16(
        g: &ConvGeom,
        x: *const f32,
        pro: Option<Prologue>,
        nb: usize,
        v: *mut f32,
        ts: usize,
        blk: usize,
    ) {
        let zero = _mm512_setzero_ps();
        for img in 0..nb {
            for c in 0..g.c {
                let plane = x.add((img * g.c + c) * 256);
                let aff = affine_of(pro, c);
                // Image row `r` (zero outside the image) from column `from` on.
                let row = |r: isize, from: isize| {
                    if (0..16).contains(&r) {
                        load_cols(plane.offset(16 * r), 16, from, aff)
                    } else {
                        zero
                    }
                };
                let r: [[__m512; 6]; 6] = std::array::from_fn(|i| {
                    let rows = |from| std::array::from_fn(|k| row((4 * k + i) as isize - 1, from));
                    let [d0, d1, d2, d3] = deinterleave(rows(-1));
                    let [d4, d5, _, _] = deinterleave(rows(3));
                    bt([d0, d1, d2, d3, d4, d5])
                });
                let at0 = c * ts + img * 16;
                for j in 0..6 {
                    for (i, o) in bt(column(&r, j)).into_iter().enumerate() {
                        _mm512_storeu_ps(v.add((i * 6 + j) * blk + at0), o);
                    }
                }
            }
        }
    }

    /// An index vector from its lanes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn index(lanes: [i32; 16]) -> __m512i {
        _mm512_loadu_epi32(lanes.as_ptr())
    }

    /// One row of the windows of two rows of 8 tiles: `a` and `b` are image
    /// rows from padded column 0 on (three vectors each, zero outside), and
    /// column `j` of the result holds padded column `4 tx + j` of `a` in
    /// lane `tx` and of `b` in lane `8 + tx`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn window_row_pair(a: [__m512; 3], b: [__m512; 3]) -> [__m512; 6] {
        let mut d = [_mm512_setzero_ps(); 6];
        for (j, dj) in d.iter_mut().take(4).enumerate() {
            let idx = index(std::array::from_fn(|l| (4 * (l % 8) + j) as i32));
            let lo = _mm512_permutex2var_ps(a[0], idx, a[1]);
            let hi = _mm512_permutex2var_ps(b[0], idx, b[1]);
            *dj = _mm512_mask_blend_ps(0xff00, lo, hi);
        }
        // Columns 4 and 5 of tile tx are columns 0 and 1 of tile tx + 1; the
        // last tile of each row takes padded columns 32 and 33 from `tail`.
        let tail = _mm512_permutex2var_ps(
            a[2],
            index(std::array::from_fn(|l| (l / 2 + 16 * (l % 2)) as i32)),
            b[2],
        );
        let shifted = |k: i32| {
            index(std::array::from_fn(|l| match l {
                7 => 16 + 2 * k,
                15 => 17 + 2 * k,
                _ => l as i32 + 1,
            }))
        };
        d[4] = _mm512_permutex2var_ps(d[0], shifted(0), tail);
        d[5] = _mm512_permutex2var_ps(d[1], shifted(1), tail);
        d
    }

    /// Input tiles of 32 x 32 images with padding 1: each vector holds two
    /// rows of tiles (tile rows `ty` and `ty + 1` in lanes `tx` and
    /// `8 + tx`), so that every vector and store is whole; for window row
    /// `k`, image rows `4 ty + k - 1` and `4 ty + k + 3` fill the halves.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn input_transform_32x32(
        g: &ConvGeom,
        x: *const f32,
        pro: Option<Prologue>,
        nb: usize,
        v: *mut f32,
        ts: usize,
        blk: usize,
    ) {
        let zero = _mm512_setzero_ps();
        for img in 0..nb {
            for c in 0..g.c {
                let plane = x.add((img * g.c + c) * 1024);
                let aff = affine_of(pro, c);
                // Image row `r` from padded column 0 (image column -1) on.
                let row = |r: isize| -> [__m512; 3] {
                    if (0..32).contains(&r) {
                        let p = plane.offset(32 * r);
                        [-1, 15, 31].map(|from| load_cols(p, 32, from, aff))
                    } else {
                        [zero; 3]
                    }
                };
                for ty in (0..8).step_by(2) {
                    let top = 4 * ty as isize - 1;
                    let r: [[__m512; 6]; 6] = std::array::from_fn(|k| {
                        let k = k as isize;
                        bt(window_row_pair(row(top + k), row(top + k + 4)))
                    });
                    let at0 = c * ts + img * 64 + ty * 8;
                    for j in 0..6 {
                        for (i, o) in bt(column(&r, j)).into_iter().enumerate() {
                            _mm512_storeu_ps(v.add((i * 6 + j) * blk + at0), o);
                        }
                    }
                }
            }
        }
    }

    /// Input tiles by gathers: lanes are 16 consecutive tiles of the group,
    /// whatever their rows and images, so narrow images fill the lanes too.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn input_transform_gather(
        g: &ConvGeom,
        x: *const f32,
        pro: Option<Prologue>,
        nb: usize,
        v: *mut f32,
        ts: usize,
        blk: usize,
    ) {
        let (th, tw) = grid(g);
        let tiles = th * tw;
        let t_all = nb * tiles;
        let (h, w, pad) = (g.h as isize, g.w as isize, g.pad as isize);
        let plane = g.h * g.w;
        let mut t0 = 0;
        while t0 < t_all {
            // Per lane: offset of the tile's top-left input (channel 0), and
            // which of its 6 rows and 6 columns lie inside the image.
            let mut base = [0i32; 16];
            let (mut rowm, mut colm) = ([0u16; 6], [0u16; 6]);
            for (l, b) in base.iter_mut().enumerate() {
                let t = t0 + l;
                if t >= t_all {
                    continue;
                }
                let (img, r) = (t / tiles, t % tiles);
                let (iy, ix) = (4 * (r / tw) as isize - pad, 4 * (r % tw) as isize - pad);
                *b = ((img * g.c * plane) as isize + iy * w + ix) as i32;
                for k in 0..6 {
                    if (0..h).contains(&(iy + k as isize)) {
                        rowm[k] |= 1 << l;
                    }
                    if (0..w).contains(&(ix + k as isize)) {
                        colm[k] |= 1 << l;
                    }
                }
            }
            let vbase = _mm512_loadu_si512(base.as_ptr() as *const _);
            let idx: [[__m512i; 6]; 6] = std::array::from_fn(|i| {
                std::array::from_fn(|j| {
                    _mm512_add_epi32(vbase, _mm512_set1_epi32((i as isize * w) as i32 + j as i32))
                })
            });
            for c in 0..g.c {
                let src = x.add(c * plane) as *const u8;
                let aff = affine_of(pro, c);
                let mut r = [[_mm512_setzero_ps(); 6]; 6];
                for i in 0..6 {
                    let d: [__m512; 6] = std::array::from_fn(|j| {
                        let mask = rowm[i] & colm[j];
                        let v = _mm512_mask_i32gather_ps::<4>(
                            _mm512_setzero_ps(),
                            mask,
                            idx[i][j],
                            src as *const f32,
                        );
                        apply(v, mask, aff)
                    });
                    r[i] = bt(d);
                }
                let at0 = c * ts + t0;
                for j in 0..6 {
                    let col = bt(column(&r, j));
                    for (i, o) in col.into_iter().enumerate() {
                        _mm512_storeu_ps(v.add((i * 6 + j) * blk + at0), o);
                    }
                }
            }
            t0 += 16;
        }
    }

    /// Output tiles by scatters: lanes are 16 consecutive tiles of the
    /// group, whatever their rows and images, so narrow images fill the
    /// lanes too.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn output_transform_scatter(
        g: &ConvGeom,
        m: *const f32,
        ts: usize,
        blk: usize,
        nb: usize,
        bias: Option<&[f32]>,
        res: Option<*const f32>,
        relu: bool,
        y: *mut f32,
    ) {
        let (th, tw) = grid(g);
        let tiles = th * tw;
        let t_all = nb * tiles;
        let p = g.ho * g.wo;
        let zero = _mm512_setzero_ps();
        let mut t0 = 0;
        while t0 < t_all {
            // Per lane: offset of the tile's top-left output (channel 0), and
            // which of its 4 rows and 4 columns lie inside the image.
            let mut base = [0i32; 16];
            let (mut rowm, mut colm) = ([0u16; 4], [0u16; 4]);
            for (l, b) in base.iter_mut().enumerate() {
                let t = t0 + l;
                if t >= t_all {
                    continue;
                }
                let (img, r) = (t / tiles, t % tiles);
                let (oy, ox) = (4 * (r / tw), 4 * (r % tw));
                *b = (img * g.o * p + oy * g.wo + ox) as i32;
                for k in 0..4 {
                    if oy + k < g.ho {
                        rowm[k] |= 1 << l;
                    }
                    if ox + k < g.wo {
                        colm[k] |= 1 << l;
                    }
                }
            }
            let vbase = _mm512_loadu_si512(base.as_ptr() as *const _);
            let idx: [[__m512i; 4]; 4] = std::array::from_fn(|i| {
                std::array::from_fn(|j| {
                    _mm512_add_epi32(vbase, _mm512_set1_epi32((i * g.wo + j) as i32))
                })
            });
            for o in 0..g.o {
                let b = _mm512_set1_ps(bias.map_or(0.0, |b| b[o]));
                let yp = y.add(o * p);
                let s = at_columns(|pt| _mm512_loadu_ps(m.add(pt * blk + o * ts + t0)));
                for (dy, srow) in s.into_iter().enumerate() {
                    if rowm[dy] == 0 {
                        break;
                    }
                    for (k, mut v) in at(srow).into_iter().enumerate() {
                        let mask = rowm[dy] & colm[k];
                        v = _mm512_add_ps(v, b);
                        if let Some(r) = res {
                            let r =
                                _mm512_mask_i32gather_ps::<4>(zero, mask, idx[dy][k], r.add(o * p));
                            v = _mm512_add_ps(v, r);
                        }
                        if relu {
                            v = _mm512_max_ps(v, zero);
                        }
                        _mm512_mask_i32scatter_ps::<4>(yp, mask, idx[dy][k], v);
                    }
                }
            }
            t0 += 16;
        }
    }

    /// `A^T` down each column `j` of a tile's products (`load(p)` gives point
    /// `p = 6 i + j`): the tile's four rows, each still to transform along.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn at_columns(load: impl Fn(usize) -> __m512) -> [[__m512; 6]; 4] {
        let mut s = [[_mm512_setzero_ps(); 6]; 4];
        for j in 0..6 {
            for (srow, v) in s
                .iter_mut()
                .zip(at(std::array::from_fn(|i| load(i * 6 + j))))
            {
                srow[j] = v;
            }
        }
        s
    }

    /// Output values `y[dx]` (lane `l`: column `dx` of tile `l`, one tile row
    /// of 16 tiles) in column order: lane `q` of vector `k` holds column
    /// `q % 4` of tile `4 k + q / 4`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn interleave(y: [__m512; 4]) -> [__m512; 4] {
        let lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
        let hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
        let p_lo = _mm512_permutex2var_ps(y[0], lo, y[2]);
        let p_hi = _mm512_permutex2var_ps(y[0], hi, y[2]);
        let q_lo = _mm512_permutex2var_ps(y[1], lo, y[3]);
        let q_hi = _mm512_permutex2var_ps(y[1], hi, y[3]);
        [
            _mm512_permutex2var_ps(p_lo, lo, q_lo),
            _mm512_permutex2var_ps(p_lo, hi, q_lo),
            _mm512_permutex2var_ps(p_hi, lo, q_hi),
            _mm512_permutex2var_ps(p_hi, hi, q_hi),
        ]
    }

    /// Output tiles where every tile is whole (`4 th x 4 tw` outputs) and
    /// four consecutive tiles lie in one tile row or span whole rows
    /// (`tw` a multiple of 4, or 1 or 2): lanes are 16 consecutive tiles of
    /// the group, whatever their rows and images, and [`interleave`] turns
    /// each output row `dy` of them into runs of image row `4 ty + dy`,
    /// stored whole (16 columns), or in halves or quarters for narrower
    /// images. No scatters, and no lane left empty.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn output_transform_packed(
        g: &ConvGeom,
        m: *const f32,
        ts: usize,
        blk: usize,
        nb: usize,
        bias: Option<&[f32]>,
        res: Option<*const f32>,
        relu: bool,
        y: *mut f32,
    ) {
        let (th, tw) = grid(g);
        let tiles = th * tw;
        let t_all = nb * tiles;
        // Tiles per run of one image row: 4, or the whole tile row.
        let run = tw.min(4);
        let p = g.ho * g.wo;
        let zero = _mm512_setzero_ps();
        for t0 in (0..t_all).step_by(16) {
            let n = (t_all - t0).min(16);
            // Per run of tiles: the lanes it fills, and where in channel 0
            // its first tile's top row starts (of the run's lanes, lane
            // `lane0` lands there). A fixed array: this runs per 16 tiles.
            let mut runs = [(0 as __mmask16, 0usize); 16];
            let n_runs = n.div_ceil(run);
            for (ri, first) in (0..n).step_by(run).enumerate() {
                let t = t0 + first;
                let (img, r) = (t / tiles, t % tiles);
                let at = img * g.o * p + 4 * (r / tw) * g.wo + 4 * (r % tw);
                let lane0 = 4 * (first % 4);
                let mask = lanes(lane0 + 4 * run) & !lanes(lane0);
                runs[ri] = (mask, at.wrapping_sub(lane0));
            }
            let per_vector = 4 / run;
            for o in 0..g.o {
                let b = _mm512_set1_ps(bias.map_or(0.0, |b| b[o]));
                let src = m.add(o * ts + t0);
                let s = at_columns(|pt| _mm512_maskz_loadu_ps(lanes(n), src.add(pt * blk)));
                for (dy, srow) in s.into_iter().enumerate() {
                    let outs = interleave(at(srow).map(|v| _mm512_add_ps(v, b)));
                    let shift = o * p + dy * g.wo;
                    // Vector k holds tiles t0 + 4 k .. t0 + 4 k + 3: runs
                    // `per_vector k ..` of them (indexed statically, so that
                    // the vectors stay in registers).
                    for (k, out) in outs.into_iter().enumerate() {
                        let first_run = k * per_vector;
                        for &(mask, base) in
                            &runs[first_run.min(n_runs)..(first_run + per_vector).min(n_runs)]
                        {
                            let mut v = out;
                            let at = base.wrapping_add(shift);
                            if let Some(rp) = res {
                                v = _mm512_add_ps(
                                    v,
                                    _mm512_maskz_loadu_ps(mask, rp.wrapping_add(at)),
                                );
                            }
                            if relu {
                                v = _mm512_max_ps(v, zero);
                            }
                            _mm512_mask_storeu_ps(y.wrapping_add(at), mask, v);
                        }
                    }
                }
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn output_transform(
        g: &ConvGeom,
        m: *const f32,
        ts: usize,
        blk: usize,
        nb: usize,
        bias: Option<&[f32]>,
        res: Option<*const f32>,
        relu: bool,
        y: *mut f32,
    ) {
        let (th, tw) = grid(g);
        let p = g.ho * g.wo;
        let zero = _mm512_setzero_ps();
        for img in 0..nb {
            for o in 0..g.o {
                let b = _mm512_set1_ps(bias.map_or(0.0, |b| b[o]));
                let yp = y.add((img * g.o + o) * p);
                let rp = res.map(|r| r.add((img * g.o + o) * p));
                let mut tx0 = 0;
                while tx0 < tw {
                    let mask = lanes((tw - tx0).min(16));
                    // Output columns 4 tx0 .. of this block inside the image.
                    let cols = g.wo - 4 * tx0;
                    let masks: [__mmask16; 4] =
                        std::array::from_fn(|q| lanes(cols.saturating_sub(16 * q)));
                    for ty in 0..th {
                        let base = img * th * tw + ty * tw + tx0;
                        // A^T down each column j, then A^T along each row.
                        let s = at_columns(|pt| {
                            _mm512_maskz_loadu_ps(mask, m.add(pt * blk + o * ts + base))
                        });
                        for (dy, srow) in s.into_iter().enumerate() {
                            let oy = 4 * ty + dy;
                            if oy >= g.ho {
                                break;
                            }
                            // Lane q of vector k: column 4 (4 k + q / 4) + q % 4
                            // of the block.
                            let outs = interleave(at(srow).map(|v| _mm512_add_ps(v, b)));
                            let at = oy * g.wo + 4 * tx0;
                            for (q, mut v) in outs.into_iter().enumerate() {
                                if masks[q] == 0 {
                                    break;
                                }
                                if let Some(rp) = rp {
                                    let r = _mm512_maskz_loadu_ps(masks[q], rp.add(at + 16 * q));
                                    v = _mm512_add_ps(v, r);
                                }
                                if relu {
                                    v = _mm512_max_ps(v, zero);
                                }
                                _mm512_mask_storeu_ps(yp.add(at + 16 * q), masks[q], v);
                            }
                        }
                    }
                    tx0 += 16;
                }
            }
        }
    }
}

/// `y = conv(x, w)` then `ep` for a geometry where [`applies`] holds:
/// transform the weights once, then per group of images transform the input
/// tiles, run one GEMM per transform point and transform the products back.
pub fn forward(g: &ConvGeom, x: &[f32], w: &[f32], ep: Epilogue, y: &mut [f32]) {
    forward_groups(g, (x, None), w, ep, y, |_, _| ());
}

/// [`forward`] of `pro(x)` (the prologue applied as the input is read),
/// also returning each image group's per-channel [`Moments`] of the output,
/// taken while the group's output is still in cache.
pub fn forward_moments(
    g: &ConvGeom,
    (x, pro): (&[f32], Option<Prologue>),
    w: &[f32],
    ep: Epilogue,
    y: &mut [f32],
) -> Vec<Vec<Moments>> {
    let out_size = g.o * g.p();
    forward_groups(g, (x, pro), w, ep, y, |_, y_grp| {
        let bn = BnGeom {
            n: y_grp.len() / out_size,
            c: g.o,
            hw: g.p(),
        };
        group_moments(bn, y_grp)
    })
}

/// Runs the convolution group by group; `after(first image, group output)`
/// runs on each group's output as soon as it is written.
fn forward_groups<R: Send>(
    g: &ConvGeom,
    (x, pro): (&[f32], Option<Prologue>),
    w: &[f32],
    ep: Epilogue,
    y: &mut [f32],
    after: impl Fn(usize, &[f32]) -> R + Sync,
) -> Vec<R> {
    let nb = images_per_group(g);
    let u = weight_transform(g, w);
    let (in_size, out_size) = (g.c * g.h * g.w, g.o * g.p());
    let stats = y
        .par_chunks_mut(nb * out_size)
        .enumerate()
        .map(|(gi, y_grp)| {
            let imgs = y_grp.len() / out_size;
            let x_grp = &x[gi * nb * in_size..][..imgs * in_size];
            let mut bufs = GroupBuffers::new(group_buffer_lens(g, imgs));
            let res = ep.residual_at(gi * nb * out_size, y_grp.len());
            forward_group(g, (x_grp, pro), &u, (ep, res), y_grp, &mut bufs);
            after(gi * nb, y_grp)
        })
        .collect();
    crate::buffers::recycle_f32(u);
    stats
}

/// Scratch for one image group: transformed input tiles `v` and products `m`.
pub(crate) struct GroupBuffers {
    pub v: Scratch,
    pub m: Scratch,
}

impl GroupBuffers {
    pub fn new((v_len, m_len): (usize, usize)) -> GroupBuffers {
        GroupBuffers {
            v: Scratch::uninit(v_len),
            m: Scratch::uninit(m_len),
        }
    }
}

/// Lengths of the scratch `(v, m)` that [`forward_group`] needs for `imgs`
/// images.
pub(crate) fn group_buffer_lens(g: &ConvGeom, imgs: usize) -> (usize, usize) {
    let t_all = imgs * grid(g).0 * grid(g).1;
    (
        POINTS * strides(t_all, g.c).1,
        POINTS * strides(t_all, g.o).1,
    )
}

/// One image group of [`forward_groups`]: `y_grp = conv(pro(x_grp))` with the
/// transformed weights `u`, then the epilogue `ep` with `res`, the group's
/// part of its residual.
pub(crate) fn forward_group(
    g: &ConvGeom,
    (x_grp, pro): (&[f32], Option<Prologue>),
    u: &[f32],
    (ep, res): (Epilogue, Option<&[f32]>),
    y_grp: &mut [f32],
    bufs: &mut GroupBuffers,
) {
    let (th, tw) = grid(g);
    let imgs = y_grp.len() / (g.o * g.p());
    let t_all = imgs * th * tw;
    let (sv, sm) = (strides(t_all, g.c), strides(t_all, g.o));
    let (v, m) = (&mut bufs.v[..POINTS * sv.1], &mut bufs.m[..POINTS * sm.1]);
    input_transform(g, x_grp, pro, imgs, v, sv);
    for xi in 0..POINTS {
        let ok = matmul_nn_ld(
            g.o,
            t_all,
            g.c,
            &u[xi * g.o * g.c..][..g.o * g.c],
            &v[xi * sv.1..][..g.c * sv.0],
            sv.0,
            &mut m[xi * sm.1..][..g.o * sm.0],
            sm.0,
        );
        assert!(ok, "Winograd path needs the AVX-512 kernel");
    }
    output_transform(g, m, sm, imgs, ep, res, y_grp);
}

#[cfg(test)]
mod tests {
    use super::super::testing::{data, geom, on_one_thread, require_avx512};
    use super::*;

    /// Direct convolution plus bias, residual and ReLU in f64.
    fn reference(
        g: &ConvGeom,
        x: &[f32],
        w: &[f32],
        b: &[f32],
        res: &[f32],
        relu: bool,
    ) -> Vec<f64> {
        let mut y = vec![0f64; g.n * g.o * g.p()];
        for n in 0..g.n {
            for o in 0..g.o {
                for oy in 0..g.ho {
                    for ox in 0..g.wo {
                        let mut acc = b[o] as f64;
                        for c in 0..g.c {
                            for i in 0..3 {
                                for j in 0..3 {
                                    let iy = (oy + i) as isize - g.pad as isize;
                                    let ix = (ox + j) as isize - g.pad as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    acc += x
                                        [((n * g.c + c) * g.h + iy as usize) * g.w + ix as usize]
                                        as f64
                                        * w[((o * g.c + c) * 3 + i) * 3 + j] as f64;
                                }
                            }
                        }
                        let at = ((n * g.o + o) * g.ho + oy) * g.wo + ox;
                        acc += res[at] as f64;
                        y[at] = if relu { acc.max(0.0) } else { acc };
                    }
                }
            }
        }
        y
    }

    #[test]
    #[cfg_attr(
        not(build_cpu_avx512),
        ignore = "needs AVX-512 (F and VL), which this CPU lacks"
    )]
    fn avx512_matches_direct_convolution() {
        require_avx512();
        // (n, c, o, h, w, pad): odd sizes, paddings 0 to 2, image counts that
        // leave a short last group, rows wider than 16 tiles.
        for (n, c, o, h, w, pad) in [
            (3, 8, 9, 7, 6, 1),
            (2, 16, 16, 8, 8, 1),
            (5, 9, 8, 5, 9, 0),
            (1, 8, 12, 4, 3, 2),
            (70, 8, 8, 4, 4, 1),
            (2, 8, 10, 5, 71, 1),
            (7, 16, 16, 13, 11, 2),
            (9, 32, 32, 16, 16, 1),
            (3, 64, 64, 8, 8, 1),
            (5, 16, 16, 32, 32, 1),
            (3, 12, 8, 11, 67, 0),
            (3, 8, 8, 9, 32, 1),
            (2, 8, 9, 10, 32, 0),
            (2, 8, 8, 13, 30, 2),
        ] {
            let g = geom(n, c, o, h, w, 3, 1, pad);
            assert!(applies(&g));
            let (x, wt, b) = (data(n * c * h * w, 1), data(o * c * 9, 2), data(o, 3));
            let res = data(n * o * g.p(), 4);
            for (with_res, relu) in [(false, false), (true, true)] {
                let zeros = vec![0f32; res.len()];
                let r_in = if with_res { &res } else { &zeros };
                let ep = Epilogue {
                    bias: Some(&b),
                    residual: with_res.then_some(&res[..]),
                    relu,
                };
                let mut y = vec![f32::NAN; n * o * g.p()];
                forward(&g, &x, &wt, ep, &mut y);
                let r = reference(&g, &x, &wt, &b, r_in, relu);
                let scale = r.iter().fold(1f64, |m, v| m.max(v.abs()));
                let mut worst = 0f64;
                for (i, (a, e)) in y.iter().zip(&r).enumerate() {
                    let err = (*a as f64 - e).abs();
                    worst = worst.max(err / scale);
                    assert!(
                        err < 1e-5 * scale,
                        "{a} vs {e} at {i} ({n} {c} {o} {h} {w} {pad})"
                    );
                }
                let what = format!("{n} {c} {o} {h} {w} {pad}");
                assert!(worst < 1e-5, "{what}: {worst}");
                let one = on_one_thread(|| {
                    let mut y1 = vec![f32::NAN; y.len()];
                    forward(&g, &x, &wt, ep, &mut y1);
                    y1
                });
                assert_eq!(one, y, "thread count changed the result ({what})");
            }
        }
    }
}
