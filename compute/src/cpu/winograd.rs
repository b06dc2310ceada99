//! Winograd F(2x2, 3x3) for stride-1 3x3 convolutions: each 2x2 output tile
//! comes from a 4x4 input tile through 16 products per channel pair instead
//! of 36.
//!
//! With `V = B^T d B` (input tiles), `U = G g G^T` (weights) and
//! `M[xi] = U[xi] * V[xi]` (one GEMM `[O, C] x [C, tiles]` per position `xi`
//! of the 4x4 transformed tile, on the AVX-512 kernel), the output tile is
//! `A^T M A`. Tiles of several images form one GEMM so that its columns stay
//! long. Every output element is a fixed sequence of operations on its
//! inputs: the image grouping and the thread count never change it.

use rayon::prelude::*;

use super::conv::{ConvGeom, Epilogue};
use super::gemm512::matmul_nn_ld;
use crate::buffers::Scratch;

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
        && super::simd::level() >= 2
}

/// Whether [`weight_grad`] runs for this geometry: where [`applies`] holds
/// and the rows hold at least 8 tiles, so the transforms fill at least half
/// of their 16 lanes (on 8x8 images im2col + GEMM measured faster).
pub fn weight_grad_applies(g: &ConvGeom) -> bool {
    applies(g) && grid(g).1 >= 8
}

/// Tile grid of a geometry: `(rows, cols)` of 2x2 output tiles.
fn grid(g: &ConvGeom) -> (usize, usize) {
    (g.ho.div_ceil(2), g.wo.div_ceil(2))
}

/// Row stride of the transformed tiles for `t` columns, and the stride of
/// one position's block of `rows` rows: padded by a cache line each so that
/// the transform points' streams do not fall into the same cache sets.
pub(crate) fn strides(t: usize, rows: usize) -> (usize, usize) {
    let ts = t.next_multiple_of(16) + 16;
    (ts, rows * ts + 16)
}

/// The bounds the unsafe input-transform kernels rely on: `nb` images fit in
/// `x`, and `points` blocks of `g.c` rows of at least `tiles` columns fit in `v`.
pub(crate) fn check_input(
    g: &ConvGeom,
    tiles: usize,
    points: usize,
    (x_len, nb): (usize, usize),
    v_len: usize,
    (ts, blk): (usize, usize),
) {
    assert!(x_len >= nb * g.c * g.h * g.w && v_len >= points * blk);
    assert!(ts >= nb * tiles && blk >= g.c * ts);
}

/// The bounds the unsafe output-transform kernels rely on: `points` blocks of
/// `g.o` rows of at least `tiles` columns in `m`, and `nb` images of output
/// (and residual, and `g.o` biases) in place.
pub(crate) fn check_output(
    g: &ConvGeom,
    tiles: usize,
    points: usize,
    m_len: usize,
    (ts, blk): (usize, usize),
    (nb, ep, res): (usize, &Epilogue, Option<&[f32]>),
    y_len: usize,
) {
    assert!(ts >= nb * tiles && blk >= g.o * ts && m_len >= points * blk);
    assert!(y_len >= nb * g.o * g.p() && ep.bias.is_none_or(|b| b.len() >= g.o));
    assert!(res.is_none_or(|r| r.len() >= nb * g.o * g.p()));
}

/// Images per GEMM: enough tiles for long GEMM rows, few enough that the
/// transformed tiles stay in the core's cache. A function of the shape only.
fn images_per_group(g: &ConvGeom) -> usize {
    let (th, tw) = grid(g);
    let target: usize = if g.c.max(g.o) <= 32 { 256 } else { 128 };
    target.div_ceil(th * tw).clamp(1, g.n.max(1))
}

/// `U[xi][o][c] = (G w[o][c] G^T)[xi]` with `G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]`.
fn weight_transform(g: &ConvGeom, w: &[f32]) -> Vec<f32> {
    let (o_n, c_n) = (g.o, g.c);
    let mut u = crate::buffers::uninit_f32(16 * o_n * c_n);
    let gm = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    for o in 0..o_n {
        for c in 0..c_n {
            let k = &w[(o * c_n + c) * 9..][..9];
            // Columns of G g (4 rows x 3 columns).
            let cols: [[f32; 4]; 3] = std::array::from_fn(|j| gm(k[j], k[3 + j], k[6 + j]));
            for i in 0..4 {
                let row = gm(cols[0][i], cols[1][i], cols[2][i]);
                for (j, v) in row.into_iter().enumerate() {
                    u[((i * 4 + j) * o_n + o) * c_n + c] = v;
                }
            }
        }
    }
    u
}

/// Input tiles of `nb` images into `v[xi][c][t]`, `t` counting tiles image
/// by image, row by row; `(ts, blk)` are the strides from [`strides`].
fn input_transform(g: &ConvGeom, x: &[f32], nb: usize, v: &mut [f32], (ts, blk): (usize, usize)) {
    let (th, tw) = grid(g);
    check_input(g, th * tw, 16, (x.len(), nb), v.len(), (ts, blk));
    // SAFETY: AVX-512F is present (checked by `applies`); reads stay within
    // the planes (masked loads) and writes within `v`, as checked above.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        x86::input_transform(g, x.as_ptr(), nb, v.as_mut_ptr(), ts, blk)
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
    let (th, tw) = grid(g);
    check_output(g, th * tw, 16, m.len(), (ts, blk), (nb, &ep, res), y.len());
    let res = res.map(|r| r.as_ptr());
    // SAFETY: as in `input_transform`.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        x86::output_transform(
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

/// Output-gradient tiles of `nb` images into `dm[xi][o][t]`:
/// `dM = A dY A^T` for each 2x2 tile `dY` of `dy` (zero past the edges),
/// laid out like the input tiles; `(ts, blk)` are the strides from [`strides`].
fn grad_transform(g: &ConvGeom, dy: &[f32], nb: usize, dm: &mut [f32], (ts, blk): (usize, usize)) {
    let (th, tw) = grid(g);
    assert!(dy.len() >= nb * g.o * g.p() && dm.len() >= 16 * blk);
    assert!(ts >= nb * th * tw && blk >= g.o * ts);
    // SAFETY: as in `input_transform`.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        x86::grad_transform(g, dy.as_ptr(), nb, dm.as_mut_ptr(), ts, blk)
    };
}

/// `c[i][j] += sum_t a[i][t] * b[j][t]` for `i < m`, `j < n`, `t < k`, with
/// row strides `lda`, `ldb` (`c` is contiguous `m x n`). Each element is
/// one dot product in a fixed order: 16 lanes over `t`, then the lanes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_nt_acc(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
) {
    assert!(lda >= k && ldb >= k && c.len() >= m * n);
    assert!(m == 0 || a.len() >= (m - 1) * lda + k);
    assert!(n == 0 || b.len() >= (n - 1) * ldb + k);
    // SAFETY: AVX-512F is present (checked by `applies`); reads and writes
    // stay within the extents asserted above.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        x86::gemm_nt_acc(m, n, k, a.as_ptr(), lda, b.as_ptr(), ldb, c.as_mut_ptr())
    };
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{grid, ConvGeom};
    use crate::cpu::simd::lanes;
    use std::arch::x86_64::*;

    /// 16 columns of a row from column `from` on, zero outside `0..w`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load_cols(row: *const f32, w: usize, from: isize) -> __m512 {
        let lo = (-from).clamp(0, 16) as usize;
        let hi = (w as isize - from).clamp(0, 16) as usize;
        let mask = lanes(hi) & !lanes(lo);
        _mm512_maskz_loadu_ps(mask, row.wrapping_offset(from))
    }

    /// Row `r` of the padded plane from column `cs` on, as the four columns
    /// of 16 consecutive tiles: `d[j][tx] = row[cs + 2 tx + j]`, zero outside.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile_cols(g: &ConvGeom, plane: *const f32, r: usize, cs: isize) -> [__m512; 4] {
        let iy = r as isize - g.pad as isize;
        if iy < 0 || iy >= g.h as isize {
            return [_mm512_setzero_ps(); 4];
        }
        let row = plane.add(iy as usize * g.w);
        let l0 = load_cols(row, g.w, cs);
        let l1 = load_cols(row, g.w, cs + 16);
        let l2 = load_cols(row, g.w, cs + 32);
        let next = _mm512_set_epi32(16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1);
        let next_odd = _mm512_set_epi32(17, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1);
        let (d0, d1) = deinterleave(l0, l1);
        let d2 = _mm512_permutex2var_ps(d0, next, l2);
        let d3 = _mm512_permutex2var_ps(d1, next_odd, l2);
        [d0, d1, d2, d3]
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn input_transform(
        g: &ConvGeom,
        x: *const f32,
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
                let mut tx0 = 0;
                while tx0 < tw {
                    let n = (tw - tx0).min(16);
                    let mask = lanes(n);
                    let cs = 2 * tx0 as isize - pad;
                    let (mut r0, mut r1) = (tile_cols(g, plane, 0, cs), tile_cols(g, plane, 1, cs));
                    for ty in 0..th {
                        let r2 = tile_cols(g, plane, 2 * ty + 2, cs);
                        let r3 = tile_cols(g, plane, 2 * ty + 3, cs);
                        let base = img * th * tw + ty * tw + tx0;
                        // Rows i of B^T d (wr[i][j], column j of the tile),
                        // then B along each row.
                        let mut wr = [[_mm512_setzero_ps(); 4]; 4];
                        for (j, (((&a, &b), &c2), &d)) in
                            r0.iter().zip(&r1).zip(&r2).zip(&r3).enumerate()
                        {
                            wr[0][j] = _mm512_sub_ps(a, c2);
                            wr[1][j] = _mm512_add_ps(b, c2);
                            wr[2][j] = _mm512_sub_ps(c2, b);
                            wr[3][j] = _mm512_sub_ps(b, d);
                        }
                        for (i, &[a0, a1, a2, a3]) in wr.iter().enumerate() {
                            let out = [
                                _mm512_sub_ps(a0, a2),
                                _mm512_add_ps(a1, a2),
                                _mm512_sub_ps(a2, a1),
                                _mm512_sub_ps(a1, a3),
                            ];
                            for (j, o) in out.into_iter().enumerate() {
                                let at = (i * 4 + j) * blk + c * ts + base;
                                _mm512_mask_storeu_ps(v.add(at), mask, o);
                            }
                        }
                        (r0, r1) = (r2, r3);
                    }
                    tx0 += 16;
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
        let lo_idx = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
        let hi_idx = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
        for img in 0..nb {
            for o in 0..g.o {
                let b = _mm512_set1_ps(bias.map_or(0.0, |b| b[o]));
                let yp = y.add((img * g.o + o) * p);
                let rp = res.map(|r| r.add((img * g.o + o) * p));
                let mut tx0 = 0;
                while tx0 < tw {
                    let n = (tw - tx0).min(16);
                    let mask = lanes(n);
                    // Output columns 2 tx0 .. of this block inside the image.
                    let cols = g.wo - 2 * tx0;
                    let (mlo, mhi) = (lanes(cols), lanes(cols.saturating_sub(16)));
                    for ty in 0..th {
                        let base = img * th * tw + ty * tw + tx0;
                        let mut mv = [_mm512_setzero_ps(); 16];
                        for (xi, v) in mv.iter_mut().enumerate() {
                            *v = _mm512_maskz_loadu_ps(mask, m.add(xi * blk + o * ts + base));
                        }
                        let (mut s0, mut s1) = ([_mm512_setzero_ps(); 4], [_mm512_setzero_ps(); 4]);
                        for j in 0..4 {
                            s0[j] = _mm512_add_ps(_mm512_add_ps(mv[j], mv[4 + j]), mv[8 + j]);
                            s1[j] = _mm512_sub_ps(_mm512_sub_ps(mv[4 + j], mv[8 + j]), mv[12 + j]);
                        }
                        let rows = [
                            (
                                _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0[0], s0[1]), s0[2]), b),
                                _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s0[1], s0[2]), s0[3]), b),
                            ),
                            (
                                _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s1[0], s1[1]), s1[2]), b),
                                _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s1[1], s1[2]), s1[3]), b),
                            ),
                        ];
                        for (dy, (ya, yb)) in rows.into_iter().enumerate() {
                            let oy = 2 * ty + dy;
                            if oy >= g.ho {
                                break;
                            }
                            let at = oy * g.wo + 2 * tx0;
                            let mut lo = _mm512_permutex2var_ps(ya, lo_idx, yb);
                            let mut hi = _mm512_permutex2var_ps(ya, hi_idx, yb);
                            if let Some(rp) = rp {
                                lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(mlo, rp.add(at)));
                                hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(mhi, rp.add(at + 16)));
                            }
                            if relu {
                                lo = _mm512_max_ps(lo, _mm512_setzero_ps());
                                hi = _mm512_max_ps(hi, _mm512_setzero_ps());
                            }
                            let dst = yp.add(at);
                            _mm512_mask_storeu_ps(dst, mlo, lo);
                            _mm512_mask_storeu_ps(dst.add(16), mhi, hi);
                        }
                    }
                    tx0 += 16;
                }
            }
        }
    }

    /// Even and odd columns of 32 from `row` (`mlo`, `mhi`: the columns in range).
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn even_odd(row: *const f32, mlo: __mmask16, mhi: __mmask16) -> (__m512, __m512) {
        let l0 = _mm512_maskz_loadu_ps(mlo, row);
        let l1 = _mm512_maskz_loadu_ps(mhi, row.add(16));
        deinterleave(l0, l1)
    }

    /// Even and odd lanes of the 32 lanes of `l0` then `l1`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn deinterleave(l0: __m512, l1: __m512) -> (__m512, __m512) {
        let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
        let odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
        (
            _mm512_permutex2var_ps(l0, even, l1),
            _mm512_permutex2var_ps(l0, odd, l1),
        )
    }

    #[target_feature(enable = "avx512f")]
    pub unsafe fn grad_transform(
        g: &ConvGeom,
        dy: *const f32,
        nb: usize,
        dm: *mut f32,
        ts: usize,
        blk: usize,
    ) {
        let (th, tw) = grid(g);
        let p = g.ho * g.wo;
        let zero = _mm512_setzero_ps();
        for img in 0..nb {
            for o in 0..g.o {
                let plane = dy.add((img * g.o + o) * p);
                let mut tx0 = 0;
                while tx0 < tw {
                    let mask = lanes((tw - tx0).min(16));
                    let cols = g.wo - 2 * tx0;
                    let (mlo, mhi) = (lanes(cols), lanes(cols.saturating_sub(16)));
                    for ty in 0..th {
                        let base = img * th * tw + ty * tw + tx0;
                        let (a0, a1) = even_odd(plane.add(2 * ty * g.wo + 2 * tx0), mlo, mhi);
                        let (b0, b1) = if 2 * ty + 1 < g.ho {
                            even_odd(plane.add((2 * ty + 1) * g.wo + 2 * tx0), mlo, mhi)
                        } else {
                            (zero, zero)
                        };
                        // Rows of A dY (A = [1 0; 1 1; 1 -1; 0 -1]), then A
                        // along each row.
                        let rows = [
                            (a0, a1),
                            (_mm512_add_ps(a0, b0), _mm512_add_ps(a1, b1)),
                            (_mm512_sub_ps(a0, b0), _mm512_sub_ps(a1, b1)),
                            (_mm512_sub_ps(zero, b0), _mm512_sub_ps(zero, b1)),
                        ];
                        for (i, (r0, r1)) in rows.into_iter().enumerate() {
                            let out = [
                                r0,
                                _mm512_add_ps(r0, r1),
                                _mm512_sub_ps(r0, r1),
                                _mm512_sub_ps(zero, r1),
                            ];
                            for (j, v) in out.into_iter().enumerate() {
                                let at = (i * 4 + j) * blk + o * ts + base;
                                _mm512_mask_storeu_ps(dm.add(at), mask, v);
                            }
                        }
                    }
                    tx0 += 16;
                }
            }
        }
    }

    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn gemm_nt_acc(
        m: usize,
        n: usize,
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
    ) {
        let (m4, n4) = (m / 4 * 4, n / 4 * 4);
        for i in (0..m4).step_by(4) {
            for j in (0..n4).step_by(4) {
                dot_tile::<4, 4>(
                    k,
                    a.add(i * lda),
                    lda,
                    b.add(j * ldb),
                    ldb,
                    c.add(i * n + j),
                    n,
                );
            }
        }
        // Ragged columns four rows at a time, then the ragged rows one
        // element at a time.
        for i in (0..m4).step_by(4) {
            for j in n4..n {
                dot_tile::<4, 1>(
                    k,
                    a.add(i * lda),
                    lda,
                    b.add(j * ldb),
                    ldb,
                    c.add(i * n + j),
                    n,
                );
            }
        }
        for i in m4..m {
            for j in 0..n {
                dot_tile::<1, 1>(
                    k,
                    a.add(i * lda),
                    lda,
                    b.add(j * ldb),
                    ldb,
                    c.add(i * n + j),
                    n,
                );
            }
        }
    }

    /// `c[i][j] += a_i . b_j` for an `R x S` block, over all of `k`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn dot_tile<const R: usize, const S: usize>(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); S]; R];
        let mut t = 0;
        while t < k {
            let mask = lanes(k - t);
            let mut bv = [_mm512_setzero_ps(); S];
            for (s, v) in bv.iter_mut().enumerate() {
                *v = _mm512_maskz_loadu_ps(mask, b.add(s * ldb + t));
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm512_maskz_loadu_ps(mask, a.add(r * lda + t));
                for (s, v) in row.iter_mut().enumerate() {
                    *v = _mm512_fmadd_ps(av, bv[s], *v);
                }
            }
            t += 16;
        }
        if R == 4 && S == 4 {
            // Lane r * 4 + s of the fold is the sum of acc[r][s].
            let v: [__m512; 16] = std::array::from_fn(|i| acc[i / 4][i % 4]);
            let sums = fold16(v);
            for r in 0..4 {
                let row = c.add(r * ldc);
                let lane = match r {
                    0 => _mm512_extractf32x4_ps::<0>(sums),
                    1 => _mm512_extractf32x4_ps::<1>(sums),
                    2 => _mm512_extractf32x4_ps::<2>(sums),
                    _ => _mm512_extractf32x4_ps::<3>(sums),
                };
                _mm_storeu_ps(row, _mm_add_ps(_mm_loadu_ps(row), lane));
            }
            return;
        }
        for (r, row) in acc.iter().enumerate() {
            for (s, v) in row.iter().enumerate() {
                *c.add(r * ldc + s) += _mm512_reduce_add_ps(*v);
            }
        }
    }

    /// Lane `i` of the result is the sum of the lanes of `v[i]`: four levels
    /// of pairwise folds, each halving the lanes per vector.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn fold16(v: [__m512; 16]) -> __m512 {
        // Level `l` keeps groups of `16 >> (l + 1)` lanes: `lo` takes the
        // first half of each group of twice that size, `hi` the second.
        let lo = [
            _mm512_set_epi32(23, 22, 21, 20, 19, 18, 17, 16, 7, 6, 5, 4, 3, 2, 1, 0),
            _mm512_set_epi32(27, 26, 25, 24, 19, 18, 17, 16, 11, 10, 9, 8, 3, 2, 1, 0),
            _mm512_set_epi32(29, 28, 25, 24, 21, 20, 17, 16, 13, 12, 9, 8, 5, 4, 1, 0),
            _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0),
        ];
        let hi = [
            _mm512_set_epi32(31, 30, 29, 28, 27, 26, 25, 24, 15, 14, 13, 12, 11, 10, 9, 8),
            _mm512_set_epi32(31, 30, 29, 28, 23, 22, 21, 20, 15, 14, 13, 12, 7, 6, 5, 4),
            _mm512_set_epi32(31, 30, 27, 26, 23, 22, 19, 18, 15, 14, 11, 10, 7, 6, 3, 2),
            _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1),
        ];
        let mut cur = v;
        let mut n = 16;
        for l in 0..4 {
            n /= 2;
            for i in 0..n {
                let (a, b) = (cur[2 * i], cur[2 * i + 1]);
                cur[i] = _mm512_add_ps(
                    _mm512_permutex2var_ps(a, lo[l], b),
                    _mm512_permutex2var_ps(a, hi[l], b),
                );
            }
        }
        cur[0]
    }
}

/// The pieces of one Winograd F(m x m, 3x3) algorithm that [`forward_with`] drives.
pub(crate) struct Variant {
    /// Transform points per tile: 16 for F(2x2, 3x3), 36 for F(4x4, 3x3).
    pub points: usize,
    /// Tile grid `(rows, cols)` of a geometry.
    pub grid: fn(&ConvGeom) -> (usize, usize),
    /// Images per GEMM group (a function of the shape only).
    pub images_per_group: fn(&ConvGeom) -> usize,
    /// `U[xi][o][c]`, the transformed weights.
    pub weight_transform: fn(&ConvGeom, &[f32]) -> Vec<f32>,
    /// Transformed input tiles of a group of images into `v` with the given strides.
    pub input_transform: InputTransform,
    /// Output tiles back to NCHW with the epilogue applied.
    pub output_transform: OutputTransform,
}

/// `(geometry, images, image count, out, (row stride, point stride))`.
pub(crate) type InputTransform = fn(&ConvGeom, &[f32], usize, &mut [f32], (usize, usize));
/// `(geometry, products, (row stride, point stride), image count, epilogue, residual, y)`.
pub(crate) type OutputTransform =
    fn(&ConvGeom, &[f32], (usize, usize), usize, Epilogue, Option<&[f32]>, &mut [f32]);

/// `y = conv(x, w)` then `ep`: transform the weights once, then per group of
/// images transform the input tiles, run one GEMM per transform point and
/// transform the products back.
pub(crate) fn forward_with(
    variant: &Variant,
    g: &ConvGeom,
    x: &[f32],
    w: &[f32],
    ep: Epilogue,
    y: &mut [f32],
) {
    let (th, tw) = (variant.grid)(g);
    let tiles = th * tw;
    let nb = (variant.images_per_group)(g);
    let u = (variant.weight_transform)(g, w);
    let (in_size, out_size) = (g.c * g.h * g.w, g.o * g.p());
    let points = variant.points;
    y.par_chunks_mut(nb * out_size)
        .enumerate()
        .for_each(|(gi, y_grp)| {
            let imgs = y_grp.len() / out_size;
            let t_all = imgs * tiles;
            let x_grp = &x[gi * nb * in_size..][..imgs * in_size];
            let (sv, sm) = (strides(t_all, g.c), strides(t_all, g.o));
            let mut v = Scratch::uninit(points * sv.1);
            let mut m = Scratch::uninit(points * sm.1);
            (variant.input_transform)(g, x_grp, imgs, &mut v, sv);
            for xi in 0..points {
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
            let res = ep.residual_at(gi * nb * out_size, y_grp.len());
            (variant.output_transform)(g, &m, sm, imgs, ep, res, y_grp);
        });
    crate::buffers::recycle_f32(u);
}

/// F(2x2, 3x3).
const F2: Variant = Variant {
    points: 16,
    grid,
    images_per_group,
    weight_transform,
    input_transform,
    output_transform,
};

/// `y = conv(x, w)` then `ep` for a geometry where [`applies`] holds.
pub fn forward(g: &ConvGeom, x: &[f32], w: &[f32], ep: Epilogue, y: &mut [f32]) {
    forward_with(&F2, g, x, w, ep, y);
}

/// Image groups per weight-gradient partial: a function of the group count
/// only, so partials are summed in an order fixed by the shape.
fn groups_per_partial(groups: usize) -> usize {
    groups.div_ceil(16).max(1)
}

/// Weight gradient `dW [O, C, 3, 3]` of a geometry where [`applies`] holds:
/// `dU[xi] = sum_t dM[xi][., t] V[xi][., t]^T` over all tiles (the input
/// tiles `V` as in the forward, the output-gradient tiles `dM = A dY A^T`),
/// then `dW = G^T dU G`. Fixed runs of image groups give partial `dU`s,
/// summed in order.
pub fn weight_grad(g: &ConvGeom, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (th, tw) = grid(g);
    let tiles = th * tw;
    let nb = images_per_group(g);
    let (in_size, out_size) = (g.c * g.h * g.w, g.o * g.p());
    let groups = g.n.div_ceil(nb);
    let per = groups_per_partial(groups);
    let uo = g.o * g.c;
    let partials: Vec<Vec<f32>> = (0..groups.div_ceil(per))
        .into_par_iter()
        .map(|pi| {
            let mut du = crate::buffers::zeros_f32(16 * uo);
            let t_max = nb * tiles;
            let (sv, sm) = (strides(t_max, g.c), strides(t_max, g.o));
            let mut v = Scratch::uninit(16 * sv.1);
            let mut m = Scratch::uninit(16 * sm.1);
            for gi in pi * per..((pi + 1) * per).min(groups) {
                let first = gi * nb;
                let imgs = (g.n - first).min(nb);
                let t_all = imgs * tiles;
                input_transform(g, &x[first * in_size..][..imgs * in_size], imgs, &mut v, sv);
                grad_transform(
                    g,
                    &dy[first * out_size..][..imgs * out_size],
                    imgs,
                    &mut m,
                    sm,
                );
                for xi in 0..16 {
                    gemm_nt_acc(
                        g.o,
                        g.c,
                        t_all,
                        &m[xi * sm.1..][..g.o * sm.0],
                        sm.0,
                        &v[xi * sv.1..][..g.c * sv.0],
                        sv.0,
                        &mut du[xi * uo..][..uo],
                    );
                }
            }
            du
        })
        .collect();
    let mut du = crate::buffers::zeros_f32(16 * uo);
    for part in partials {
        du.iter_mut().zip(&part).for_each(|(a, b)| *a += b);
        crate::buffers::recycle_f32(part);
    }
    // dW = G^T dU G with G^T = [1 .5 .5 0; 0 .5 -.5 0; 0 .5 .5 1].
    let gt = |u: [f32; 4]| {
        [
            u[0] + 0.5 * (u[1] + u[2]),
            0.5 * (u[1] - u[2]),
            0.5 * (u[1] + u[2]) + u[3],
        ]
    };
    let mut dw = crate::buffers::uninit_f32(uo * 9);
    for oc in 0..uo {
        let at = |i: usize, j: usize| du[(i * 4 + j) * uo + oc];
        // Columns of G^T dU (3 rows x 4 columns), then G along each row.
        let cols: [[f32; 3]; 4] =
            std::array::from_fn(|j| gt([at(0, j), at(1, j), at(2, j), at(3, j)]));
        for i in 0..3 {
            let row = gt([cols[0][i], cols[1][i], cols[2][i], cols[3][i]]);
            dw[oc * 9 + i * 3..][..3].copy_from_slice(&row);
        }
    }
    crate::buffers::recycle_f32(du);
    dw
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_close_scaled, data, geom, on_one_thread, reference_grads};
    use super::*;

    /// `(n, c, o, h, w, pad)` of the stride-1 3x3 geometries tested.
    const GEOMS: [(usize, usize, usize, usize, usize, usize); 6] = [
        (3, 8, 9, 7, 6, 1),
        (2, 16, 16, 8, 8, 1),
        (5, 9, 8, 5, 9, 0),
        (1, 8, 12, 4, 3, 2),
        (70, 8, 8, 4, 4, 1),
        (2, 8, 10, 5, 37, 1),
    ];

    /// Whether this CPU runs the Winograd path at all (it needs AVX-512);
    /// every geometry in [`GEOMS`] qualifies where it does.
    fn supported() -> bool {
        super::super::simd::level() >= 2
    }

    /// Direct convolution in f64.
    fn reference(g: &ConvGeom, x: &[f32], w: &[f32], b: &[f32]) -> Vec<f64> {
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
                        y[((n * g.o + o) * g.ho + oy) * g.wo + ox] = acc;
                    }
                }
            }
        }
        y
    }

    #[test]
    fn weight_gradient_matches_direct() {
        if !supported() {
            return;
        }
        for (n, c, o, h, w, pad) in GEOMS.into_iter().chain([(40, 12, 16, 9, 9, 1)]) {
            let g = geom(n, c, o, h, w, 3, 1, pad);
            assert!(applies(&g));
            let (x, dy) = (data(n * c * h * w, 4), data(n * o * g.p(), 5));
            let dw = weight_grad(&g, &x, &dy);
            let wt = vec![0f32; o * c * 9];
            let r = &reference_grads(&g, &x, &wt, &dy)[1];
            assert_close_scaled(&dw, r, 1e-5, &format!("{n} {c} {o} {h} {w} {pad}"));
            // Bit-identical on one thread.
            assert_eq!(on_one_thread(|| weight_grad(&g, &x, &dy)), dw);
        }
    }

    #[test]
    fn matches_direct_convolution() {
        if !supported() {
            return;
        }
        for (n, c, o, h, w, pad) in GEOMS {
            let g = geom(n, c, o, h, w, 3, 1, pad);
            assert!(applies(&g));
            let (x, wt, b) = (data(n * c * h * w, 1), data(o * c * 9, 2), data(o, 3));
            let mut y = vec![f32::NAN; n * o * g.p()];
            forward(&g, &x, &wt, Epilogue::bias(Some(&b)), &mut y);
            let r = reference(&g, &x, &wt, &b);
            for (i, (a, e)) in y.iter().zip(&r).enumerate() {
                assert!(
                    (*a as f64 - e).abs() < 1e-4 * (1.0 + e.abs()),
                    "{a} vs {e} at {i} ({n} {c} {o} {h} {w} {pad})"
                );
            }
        }
    }
}
