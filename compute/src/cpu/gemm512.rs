//! A small AVX-512 kernel for `C = A * B` with row-major `A [M, K]`,
//! `B [K, N]` and `C [M, N]`: the convolution's `W * col` shape (few rows,
//! long contiguous columns). Tiles of up to 12 rows by 32 columns accumulate over
//! the whole of K in registers, summing in K order, so every element of C is
//! a fixed-order dot product.

/// `c = a * b`; returns false (and does nothing) where AVX-512 is missing.
pub fn matmul_nn(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) -> bool {
    matmul_nn_ld(m, n, k, a, b, n, c, n)
}

/// [`matmul_nn`] with row strides `ldb` for `B` and `ldc` for `C` (`A` contiguous).
#[allow(clippy::too_many_arguments)]
pub fn matmul_nn_ld(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
    ldc: usize,
) -> bool {
    matmul_nn_acc(m, n, k, a, k, b, ldb, c, ldc, false)
}

/// The extents the unsafe `C = A * B` kernels (this one and
/// [`super::gemm256`]) rely on: strides at least the rows' widths, and every
/// row of `A [M, K]`, `B [K, N]` and `C [M, N]` inside its slice.
pub(crate) fn check_nn_extents(
    m: usize,
    n: usize,
    k: usize,
    (a, lda): (&[f32], usize),
    (b, ldb): (&[f32], usize),
    (c, ldc): (&[f32], usize),
) {
    assert!(lda >= k && ldb >= n && ldc >= n);
    assert!(m == 0 || a.len() >= (m - 1) * lda + k);
    assert!(k == 0 || n == 0 || b.len() >= (k - 1) * ldb + n);
    assert!(m == 0 || n == 0 || c.len() >= (m - 1) * ldc + n);
}

/// [`matmul_nn_ld`] with row stride `lda` for `A`, or `c += a * b` with
/// `accumulate` (each element starts from its value in `c` and adds the
/// products in K order).
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
    check_nn_extents(m, n, k, (a, lda), (b, ldb), (&*c, ldc));
    #[cfg(target_arch = "x86_64")]
    {
        if super::simd::level() >= super::simd::AVX512 {
            // SAFETY: AVX-512F is present; the slices hold the extents asserted above.
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
    // SAFETY: AVX-512F is present (checked by the caller); reads and writes
    // stay within the extents asserted above.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        x86::gemm_nt_acc(m, n, k, a.as_ptr(), lda, b.as_ptr(), ldb, c.as_mut_ptr())
    };
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use crate::cpu::lanes::mask as lanes;
    use std::arch::x86_64::*;

    const MR: usize = 12;
    const NR: usize = 32;

    #[target_feature(enable = "avx512f")]
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
            if w <= 16 {
                // One column vector: skip the empty second half of the tile.
                narrow(
                    m,
                    k,
                    a,
                    lda,
                    b.add(j),
                    ldb,
                    c.add(j),
                    ldc,
                    lanes(w),
                    accumulate,
                );
                break;
            }
            let (m0, m1) = (lanes(w), lanes(w.saturating_sub(16)));
            // Row tiles of near-equal height (16 rows: 8 + 8, not 12 + 4).
            let mut tiles = m.div_ceil(MR);
            let mut i = 0;
            while i < m {
                let rows = (m - i).div_ceil(tiles);
                tiles -= 1;
                let (ap, bp, cp) = (a.add(i * lda), b.add(j), c.add(i * ldc + j));
                match rows {
                    12 => tile::<12>(k, ap, lda, bp, ldb, cp, ldc, m0, m1, accumulate),
                    11 => tile::<11>(k, ap, lda, bp, ldb, cp, ldc, m0, m1, accumulate),
                    10 => tile::<10>(k, ap, lda, bp, ldb, cp, ldc, m0, m1, accumulate),
                    9 => tile::<9>(k, ap, lda, bp, ldb, cp, ldc, m0, m1, accumulate),
                    8 => tile::<8>(k, ap, lda, bp, ldb, cp, ldc, m0, m1, accumulate),
                    7 => tile::<7>(k, ap, lda, bp, ldb, cp, ldc, m0, m1, accumulate),
                    6 => tile::<6>(k, ap, lda, bp, ldb, cp, ldc, m0, m1, accumulate),
                    5 => tile::<5>(k, ap, lda, bp, ldb, cp, ldc, m0, m1, accumulate),
                    4 => tile::<4>(k, ap, lda, bp, ldb, cp, ldc, m0, m1, accumulate),
                    3 => tile::<3>(k, ap, lda, bp, ldb, cp, ldc, m0, m1, accumulate),
                    2 => tile::<2>(k, ap, lda, bp, ldb, cp, ldc, m0, m1, accumulate),
                    1 => tile::<1>(k, ap, lda, bp, ldb, cp, ldc, m0, m1, accumulate),
                    _ => unreachable!("row tile of {rows}"),
                }
                i += rows;
            }
            j += NR;
        }
    }

    /// All `m` rows of C for at most 16 columns (`mask`): row tiles of up
    /// to 12 rows with one accumulator each.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    unsafe fn narrow(
        m: usize,
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        mask: __mmask16,
        accumulate: bool,
    ) {
        let mut tiles = m.div_ceil(MR);
        let mut i = 0;
        while i < m {
            let rows = (m - i).div_ceil(tiles);
            tiles -= 1;
            let (ap, cp) = (a.add(i * lda), c.add(i * ldc));
            match rows {
                12 => tile1::<12>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                11 => tile1::<11>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                10 => tile1::<10>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                9 => tile1::<9>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                8 => tile1::<8>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                7 => tile1::<7>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                6 => tile1::<6>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                5 => tile1::<5>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                4 => tile1::<4>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                3 => tile1::<3>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                2 => tile1::<2>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                1 => tile1::<1>(k, ap, lda, b, ldb, cp, ldc, mask, accumulate),
                _ => unreachable!("row tile of {rows}"),
            }
            i += rows;
        }
    }

    /// [`tile`] for one column vector.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile1<const R: usize>(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        mask: __mmask16,
        accumulate: bool,
    ) {
        let mut acc = [_mm512_setzero_ps(); R];
        if accumulate {
            for (r, v) in acc.iter_mut().enumerate() {
                *v = _mm512_maskz_loadu_ps(mask, c.add(r * ldc));
            }
        }
        for kk in 0..k {
            let bv = _mm512_maskz_loadu_ps(mask, b.add(kk * ldb));
            for (r, v) in acc.iter_mut().enumerate() {
                *v = _mm512_fmadd_ps(_mm512_set1_ps(*a.add(r * lda + kk)), bv, *v);
            }
        }
        for (r, v) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(c.add(r * ldc), mask, *v);
        }
    }

    /// `R` rows of C, 32 columns (masked), over all of K (added to C's
    /// values with `accumulate`).
    #[inline]
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile<const R: usize>(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        ldb: usize,
        c: *mut f32,
        ldc: usize,
        m0: __mmask16,
        m1: __mmask16,
        accumulate: bool,
    ) {
        let mut acc0 = [_mm512_setzero_ps(); R];
        let mut acc1 = [_mm512_setzero_ps(); R];
        if accumulate {
            for r in 0..R {
                acc0[r] = _mm512_maskz_loadu_ps(m0, c.add(r * ldc));
                acc1[r] = _mm512_maskz_loadu_ps(m1, c.add(r * ldc + 16));
            }
        }
        for kk in 0..k {
            let row = b.add(kk * ldb);
            let b0 = _mm512_maskz_loadu_ps(m0, row);
            let b1 = _mm512_maskz_loadu_ps(m1, row.add(16));
            for r in 0..R {
                let av = _mm512_set1_ps(*a.add(r * lda + kk));
                acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
                acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
            }
        }
        for r in 0..R {
            _mm512_mask_storeu_ps(c.add(r * ldc), m0, acc0[r]);
            _mm512_mask_storeu_ps(c.add(r * ldc + 16), m1, acc1[r]);
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
    #[cfg_attr(
        not(build_cpu_avx512),
        ignore = "needs AVX-512 (F and VL), which this CPU lacks"
    )]
    fn avx512_matches_reference_on_ragged_shapes() {
        super::super::testing::require_avx512();
        for (m, n, k) in [
            (16, 1024, 144),
            (7, 37, 5),
            (1, 1, 1),
            (13, 16, 3),
            (6, 33, 9),
        ] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 37) % 17) as f32 - 8.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 53) % 13) as f32 - 6.0).collect();
            let mut c = vec![f32::NAN; m * n];
            assert!(
                matmul_nn(m, n, k, &a, &b, &mut c),
                "the AVX-512 kernel declined"
            );
            for i in 0..m {
                for j in 0..n {
                    let r: f32 = (0..k).map(|t| a[i * k + t] * b[t * n + j]).sum();
                    assert_eq!(c[i * n + j], r, "{m}x{n}x{k} at {i},{j}");
                }
            }
            // The same product inside wider matrices, the margins untouched.
            let (ldb, ldc) = (n + 5, n + 19);
            let bw = widen(&b, n, ldb);
            let mut cw = vec![-7f32; m * ldc];
            assert!(matmul_nn_ld(m, n, k, &a, &bw, ldb, &mut cw, ldc));
            for i in 0..m {
                assert_eq!(&cw[i * ldc..i * ldc + n], &c[i * n..(i + 1) * n]);
                assert!(cw[i * ldc + n..(i + 1) * ldc].iter().all(|&v| v == -7.0));
            }
            // Accumulating onto the result adds the same products again, in K order.
            let lda = k + 3;
            let aw = widen(&a, k, lda);
            assert!(matmul_nn_acc(
                m, n, k, &aw, lda, &bw, ldb, &mut cw, ldc, true
            ));
            for i in 0..m {
                for j in 0..n {
                    let r = (0..k).fold(c[i * n + j], |s, t| s + a[i * k + t] * b[t * n + j]);
                    assert_eq!(cw[i * ldc + j], r, "acc {m}x{n}x{k} at {i},{j}");
                }
                assert!(cw[i * ldc + n..(i + 1) * ldc].iter().all(|&v| v == -7.0));
            }
        }
    }
}
