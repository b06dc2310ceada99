//! The AVX2 + FMA counterpart of [`super::gemm512`]: `C = A * B` (or
//! `C += A * B`) with row-major `A [M, K]`, `B [K, N]` and `C [M, N]`, for
//! few rows and long contiguous columns. Tiles of up to 6 rows by 16 columns
//! (12 of the 16 ymm registers) accumulate over the whole of K in registers,
//! with no packing, summing in K order with one fused multiply-add per
//! product, so every element of C is a fixed-order dot product whatever the
//! tiling or the thread count.

/// `c = a * b`, or `c += a * b` with `accumulate`, with row strides `lda`,
/// `ldb` and `ldc`; returns false (and does nothing) where AVX2 or FMA is
/// missing. Each element starts from its value in `c` (or 0) and adds
/// the products in K order, `s = fma(a[i][t], b[t][j], s)` for `t = 0..k`.
#[allow(clippy::too_many_arguments)]
pub fn matmul_nn_acc(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) -> bool {
    super::gemm512::check_nn_extents(m, n, k, (a, lda), (b, ldb), (&*c, ldc));
    #[cfg(target_arch = "x86_64")]
    {
        if super::simd::detected_level() >= super::simd::AVX2 {
            // SAFETY: AVX2 and FMA are present; the slices hold the extents
            // asserted above.
            unsafe {
                x86::gemm_nn(
                    m,
                    n,
                    k,
                    a.as_ptr(),
                    lda,
                    b.as_ptr(),
                    ldb,
                    c.as_mut_ptr(),
                    ldc,
                    accumulate,
                )
            };
            return true;
        }
    }
    let _ = (m, n, k, a, b, c, accumulate);
    false
}

/// `c[i][j] += sum_t a[i][t] * b[j][t]` for `i < m`, `j < n`, `t < k`,
/// with row strides `lda`, `ldb` (`c` is contiguous `m x n`), as
/// [`super::gemm512::gemm_nt_acc`] computes it: each element one dot
/// product in 16 lanes over `t` (two 8-lane halves), then the lanes added
/// pairwise. Returns false (and does nothing) where AVX2 or FMA is missing.
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
) -> bool {
    assert!(lda >= k && ldb >= k && c.len() >= m * n);
    assert!(m == 0 || a.len() >= (m - 1) * lda + k);
    assert!(n == 0 || b.len() >= (n - 1) * ldb + k);
    #[cfg(target_arch = "x86_64")]
    {
        if super::simd::detected_level() >= super::simd::AVX2 {
            // SAFETY: AVX2 and FMA are present; reads and writes stay within
            // the extents asserted above.
            unsafe { x86::gemm_nt_acc(m, n, k, a.as_ptr(), lda, b.as_ptr(), ldb, c.as_mut_ptr()) };
            return true;
        }
    }
    let _ = (m, n, k, a, b, c);
    false
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Rows of a two-vector tile (12 accumulators, 2 B vectors, 1 broadcast).
    const MR: usize = 6;
    /// Rows of a one-vector tile (12 accumulators, 1 B vector, 1 broadcast).
    const MR1: usize = 12;
    const NR: usize = 16;

    /// The first `n` (at most 8) lanes.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn lanes(n: usize) -> __m256i {
        let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(n.min(8) as i32), idx)
    }

    /// A load of 8 lanes, all of them (`FULL`) or those of `mask`.
    #[inline(always)]
    unsafe fn load<const FULL: bool>(p: *const f32, mask: __m256i) -> __m256 {
        if FULL {
            _mm256_loadu_ps(p)
        } else {
            _mm256_maskload_ps(p, mask)
        }
    }

    #[inline(always)]
    unsafe fn store<const FULL: bool>(p: *mut f32, mask: __m256i, v: __m256) {
        if FULL {
            _mm256_storeu_ps(p, v)
        } else {
            _mm256_maskstore_ps(p, mask, v)
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn gemm_nn(
        m: usize,
        n: usize,
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        accumulate: bool,
    ) {
        let mut j = 0;
        while j < n {
            let w = (n - j).min(NR);
            if w <= 8 {
                // One column vector: taller tiles, no empty second half.
                let mask = lanes(w);
                let (bp, cp) = (b.add(j), c.add(j));
                if w == 8 {
                    narrow::<true>(m, k, a, lda, bp, ldb, cp, ldc, mask, accumulate);
                } else {
                    narrow::<false>(m, k, a, lda, bp, ldb, cp, ldc, mask, accumulate);
                }
                break;
            }
            let m1 = lanes(w - 8);
            // Row tiles of near-equal height (16 rows: 6 + 5 + 5, not 6 + 6 + 4).
            let mut tiles = m.div_ceil(MR);
            let mut i = 0;
            while i < m {
                let rows = (m - i).div_ceil(tiles);
                tiles -= 1;
                let (ap, bp, cp) = (a.add(i * lda), b.add(j), c.add(i * ldc + j));
                if w == NR {
                    match rows {
                        6 => tile::<6, true>(k, ap, lda, bp, ldb, cp, ldc, m1, accumulate),
                        5 => tile::<5, true>(k, ap, lda, bp, ldb, cp, ldc, m1, accumulate),
                        4 => tile::<4, true>(k, ap, lda, bp, ldb, cp, ldc, m1, accumulate),
                        3 => tile::<3, true>(k, ap, lda, bp, ldb, cp, ldc, m1, accumulate),
                        2 => tile::<2, true>(k, ap, lda, bp, ldb, cp, ldc, m1, accumulate),
                        1 => tile::<1, true>(k, ap, lda, bp, ldb, cp, ldc, m1, accumulate),
                        _ => unreachable!("row tile of {rows}"),
                    }
                } else {
                    match rows {
                        6 => tile::<6, false>(k, ap, lda, bp, ldb, cp, ldc, m1, accumulate),
                        5 => tile::<5, false>(k, ap, lda, bp, ldb, cp, ldc, m1, accumulate),
                        4 => tile::<4, false>(k, ap, lda, bp, ldb, cp, ldc, m1, accumulate),
                        3 => tile::<3, false>(k, ap, lda, bp, ldb, cp, ldc, m1, accumulate),
                        2 => tile::<2, false>(k, ap, lda, bp, ldb, cp, ldc, m1, accumulate),
                        1 => tile::<1, false>(k, ap, lda, bp, ldb, cp, ldc, m1, accumulate),
                        _ => unreachable!("row tile of {rows}"),
                    }
                }
                i += rows;
            }
            j += NR;
        }
    }

    /// All `m` rows of C for at most 8 columns (all of them with `FULL`,
    /// else those of `mask`): row tiles of up to 12 rows with one
    /// accumulator each.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn narrow<const FULL: bool>(
        m: usize,
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        mask: __m256i,
        accumulate: bool,
    ) {
        let mut tiles = m.div_ceil(MR1);
        let mut i = 0;
        while i < m {
            let rows = (m - i).div_ceil(tiles);
            tiles -= 1;
            let (ap, cp) = (a.add(i * lda), c.add(i * ldc));
            match rows {
                12 => tile1::<12, FULL>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                11 => tile1::<11, FULL>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                10 => tile1::<10, FULL>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                9 => tile1::<9, FULL>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                8 => tile1::<8, FULL>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                7 => tile1::<7, FULL>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                6 => tile1::<6, FULL>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                5 => tile1::<5, FULL>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                4 => tile1::<4, FULL>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                3 => tile1::<3, FULL>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                2 => tile1::<2, FULL>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                1 => tile1::<1, FULL>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                _ => unreachable!("row tile of {rows}"),
            }
            i += rows;
        }
    }

    /// `R` rows of C, one column vector, over all of K.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile1<const R: usize, const FULL: bool>(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        mask: __m256i,
        accumulate: bool,
    ) {
        let mut acc = [_mm256_setzero_ps(); R];
        if accumulate {
            for (r, v) in acc.iter_mut().enumerate() {
                *v = load::<FULL>(c.add(r * ldc), mask);
            }
        }
        for kk in 0..k {
            let bv = load::<FULL>(b.add(kk * ldb), mask);
            for (r, v) in acc.iter_mut().enumerate() {
                *v = _mm256_fmadd_ps(_mm256_set1_ps(*a.add(r * lda + kk)), bv, *v);
            }
        }
        for (r, v) in acc.iter().enumerate() {
            store::<FULL>(c.add(r * ldc), mask, *v);
        }
    }

    /// `R` rows of C, 16 columns (the second 8 masked by `m1` unless `FULL`),
    /// over all of K (added to C's values with `accumulate`).
    #[inline]
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile<const R: usize, const FULL: bool>(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        m1: __m256i,
        accumulate: bool,
    ) {
        let mut acc0 = [_mm256_setzero_ps(); R];
        let mut acc1 = [_mm256_setzero_ps(); R];
        if accumulate {
            for r in 0..R {
                acc0[r] = _mm256_loadu_ps(c.add(r * ldc));
                acc1[r] = load::<FULL>(c.add(r * ldc + 8), m1);
            }
        }
        for kk in 0..k {
            let row = b.add(kk * ldb);
            let b0 = _mm256_loadu_ps(row);
            let b1 = load::<FULL>(row.add(8), m1);
            for r in 0..R {
                let av = _mm256_set1_ps(*a.add(r * lda + kk));
                acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
                acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
            }
        }
        for r in 0..R {
            _mm256_storeu_ps(c.add(r * ldc), acc0[r]);
            store::<FULL>(c.add(r * ldc + 8), m1, acc1[r]);
        }
    }

    /// Sixteen lanes as two halves, for the dot products of [`gemm_nt_acc`].
    type Lanes16 = (__m256, __m256);

    /// The 16 lanes at `p`, those past `n` (of 16) zero.
    #[inline(always)]
    unsafe fn load16(p: *const f32, n: usize) -> Lanes16 {
        if n >= 16 {
            (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)))
        } else {
            (
                _mm256_maskload_ps(p, lanes(n)),
                _mm256_maskload_ps(p.add(8), lanes(n.saturating_sub(8))),
            )
        }
    }

    /// The 16 lanes added: the halves, then pairwise within one half.
    #[inline(always)]
    unsafe fn sum16(v: Lanes16) -> f32 {
        let s = _mm256_add_ps(v.0, v.1);
        let s = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
    }

    #[target_feature(enable = "avx2,fma")]
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
        let (m2, n2) = (m / 2 * 2, n / 2 * 2);
        for i in (0..m2).step_by(2) {
            for j in (0..n2).step_by(2) {
                dot_tile::<2, 2>(
                    k,
                    a.add(i * lda),
                    lda,
                    b.add(j * ldb),
                    ldb,
                    c.add(i * n + j),
                    n,
                );
            }
            if n2 < n {
                dot_tile::<2, 1>(
                    k,
                    a.add(i * lda),
                    lda,
                    b.add(n2 * ldb),
                    ldb,
                    c.add(i * n + n2),
                    n,
                );
            }
        }
        if m2 < m {
            for j in 0..n {
                dot_tile::<1, 1>(
                    k,
                    a.add(m2 * lda),
                    lda,
                    b.add(j * ldb),
                    ldb,
                    c.add(m2 * n + j),
                    n,
                );
            }
        }
    }

    /// `c[i][j] += a_i . b_j` for an `R x S` block, over all of `k` (two
    /// accumulators per element: 4 to 8 of the 16 registers).
    #[inline]
    #[target_feature(enable = "avx2,fma")]
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
        let z = _mm256_setzero_ps();
        let mut acc = [[(z, z); S]; R];
        let mut t = 0;
        while t < k {
            let bv: [Lanes16; S] = std::array::from_fn(|s| load16(b.add(s * ldb + t), k - t));
            for (r, row) in acc.iter_mut().enumerate() {
                let av = load16(a.add(r * lda + t), k - t);
                for (s, v) in row.iter_mut().enumerate() {
                    *v = (
                        _mm256_fmadd_ps(av.0, bv[s].0, v.0),
                        _mm256_fmadd_ps(av.1, bv[s].1, v.1),
                    );
                }
            }
            t += 16;
        }
        for (r, row) in acc.iter().enumerate() {
            for (s, v) in row.iter().enumerate() {
                *c.add(r * ldc + s) += sum16(*v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of `cols` values from `x`, `ld` apart, NaN in the margins.
    fn widen(x: &[f32], cols: usize, ld: usize) -> Vec<f32> {
        x.chunks(cols)
            .flat_map(|row| {
                row.iter()
                    .copied()
                    .chain(std::iter::repeat(f32::NAN))
                    .take(ld)
            })
            .collect()
    }

    #[test]
    fn avx2_gemm_matches_reference_on_ragged_shapes() {
        if !super::super::testing::cpu_has_avx2() {
            return;
        }
        for (m, n, k) in [
            (16, 1024, 144),
            (7, 37, 5),
            (1, 1, 1),
            (13, 16, 3),
            (6, 33, 9),
            (12, 8, 4),
            (25, 7, 11),
            (16, 16, 700),
            (64, 24, 2),
        ] {
            // Exact small integers: every order of summation gives the same sums.
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 37) % 17) as f32 - 8.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 53) % 13) as f32 - 6.0).collect();
            let mut c = vec![f32::NAN; m * n];
            assert!(
                matmul_nn_acc(m, n, k, &a, k, &b, n, &mut c, n, false),
                "the AVX2 kernel declined"
            );
            for i in 0..m {
                for j in 0..n {
                    let r: f64 = (0..k)
                        .map(|t| a[i * k + t] as f64 * b[t * n + j] as f64)
                        .sum();
                    assert_eq!(c[i * n + j] as f64, r, "{m}x{n}x{k} at {i},{j}");
                }
            }
            // The same product inside wider matrices, the margins untouched.
            let (ldb, ldc) = (n + 5, n + 19);
            let bw = widen(&b, n, ldb);
            let mut cw = vec![-7f32; m * ldc];
            assert!(matmul_nn_acc(m, n, k, &a, k, &bw, ldb, &mut cw, ldc, false));
            for i in 0..m {
                assert_eq!(&cw[i * ldc..i * ldc + n], &c[i * n..(i + 1) * n]);
                assert!(cw[i * ldc + n..(i + 1) * ldc].iter().all(|&v| v == -7.0));
            }

            // Inexact values: within rounding of the f64 product, and with
            // `accumulate` bit for bit the fused multiply-adds in K order
            // from C's value.
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 37 % 101) as f32 - 50.3) / 7.1)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 53 % 97) as f32 - 47.9) / 9.7)
                .collect();
            let c0: Vec<f32> = (0..m * n).map(|i| (i % 23) as f32 * 0.37 - 4.1).collect();
            let mut c = vec![f32::NAN; m * n];
            assert!(matmul_nn_acc(m, n, k, &a, k, &b, n, &mut c, n, false));
            let lda = k + 3;
            let aw = widen(&a, k, lda);
            let bw = widen(&b, n, ldb);
            let mut cw = widen(&c0, n, ldc);
            assert!(matmul_nn_acc(
                m, n, k, &aw, lda, &bw, ldb, &mut cw, ldc, true
            ));
            for i in 0..m {
                for j in 0..n {
                    let (mut r, mut mag) = (0f64, 0f64);
                    for t in 0..k {
                        let p = a[i * k + t] as f64 * b[t * n + j] as f64;
                        r += p;
                        mag += p.abs();
                    }
                    let tol = (k as f64 + 1.0) * f32::EPSILON as f64 * mag;
                    let got = c[i * n + j] as f64;
                    assert!(
                        (got - r).abs() <= tol,
                        "{m}x{n}x{k} at {i},{j}: {got} vs {r}"
                    );
                    let f =
                        (0..k).fold(c0[i * n + j], |s, t| a[i * k + t].mul_add(b[t * n + j], s));
                    assert_eq!(
                        cw[i * ldc + j].to_bits(),
                        f.to_bits(),
                        "acc {m}x{n}x{k} at {i},{j}"
                    );
                }
                assert!(cw[i * ldc + n..(i + 1) * ldc].iter().all(|v| v.is_nan()));
            }
        }
    }

    #[test]
    fn avx2_gemm_nt_matches_reference() {
        if !super::super::testing::cpu_has_avx2() {
            return;
        }
        for (m, n, k) in [
            (6, 26, 576),
            (16, 151, 64),
            (1, 1, 1),
            (3, 5, 17),
            (7, 3, 33),
        ] {
            let (lda, ldb) = (k + 3, k + 1);
            let a: Vec<f32> = (0..m * lda)
                .map(|i| ((i * 37 % 101) as f32 - 50.3) / 7.1)
                .collect();
            let b: Vec<f32> = (0..n * ldb)
                .map(|i| ((i * 53 % 97) as f32 - 47.9) / 9.7)
                .collect();
            let c0: Vec<f32> = (0..m * n).map(|i| (i % 23) as f32 * 0.37 - 4.1).collect();
            let mut c = c0.clone();
            assert!(gemm_nt_acc(m, n, k, &a, lda, &b, ldb, &mut c));
            for i in 0..m {
                for j in 0..n {
                    let (mut r, mut mag) = (c0[i * n + j] as f64, c0[i * n + j].abs() as f64);
                    for t in 0..k {
                        let p = a[i * lda + t] as f64 * b[j * ldb + t] as f64;
                        r += p;
                        mag += p.abs();
                    }
                    let tol = (k as f64 + 2.0) * f32::EPSILON as f64 * mag;
                    let got = c[i * n + j] as f64;
                    assert!(
                        (got - r).abs() <= tol,
                        "{m}x{n}x{k} at {i},{j}: {got} vs {r}"
                    );
                }
            }
        }
    }
}
