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
    assert!(lda >= k && ldb >= n && ldc >= n);
    assert!(m == 0 || a.len() >= (m - 1) * lda + k);
    assert!(k == 0 || n == 0 || b.len() >= (k - 1) * ldb + n);
    assert!(m == 0 || n == 0 || c.len() >= (m - 1) * ldc + n);
    #[cfg(target_arch = "x86_64")]
    {
        if super::simd::level() >= 2 {
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
    let _ = (m, n, k, a, b, c);
    false
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use crate::cpu::simd::lanes;
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
    fn matches_reference_on_ragged_shapes() {
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
            if !matmul_nn(m, n, k, &a, &b, &mut c) {
                return;
            }
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
