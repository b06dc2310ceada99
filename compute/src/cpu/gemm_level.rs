//! Our GEMM kernels at the level the CPU kernels dispatch to
//! ([`super::simd::level`]): [`super::gemm512`] at AVX-512,
//! [`super::gemm256`] at AVX2. Each returns false (and does nothing) at the
//! portable level, where the caller falls back to the `gemm` crate.

use super::simd::{level, AVX2, AVX512};
use super::{gemm256, gemm512};

/// `c = a * b` (`A [M, K]`, `B [K, N]`, `C [M, N]`, contiguous).
pub fn matmul_nn(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) -> bool {
    matmul_nn_acc(m, n, k, a, k, b, n, c, n, false)
}

/// `c = a * b`, or `c += a * b` with `accumulate`, with row strides.
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
    match level() {
        AVX512 => gemm512::matmul_nn_acc(m, n, k, a, lda, b, ldb, c, ldc, accumulate),
        AVX2 => gemm256::matmul_nn_acc(m, n, k, a, lda, b, ldb, c, ldc, accumulate),
        _ => false,
    }
}

/// `c[i][j] += a_i . b_j` (rows of `a` and `b` with strides `lda`, `ldb`).
#[allow(clippy::too_many_arguments)]
pub fn gemm_nt_acc(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    ldb: usize,
    c: &mut [f32],
) -> bool {
    match level() {
        AVX512 => {
            gemm512::gemm_nt_acc(m, n, k, a, lda, b, ldb, c);
            true
        }
        AVX2 => gemm256::gemm_nt_acc(m, n, k, a, lda, b, ldb, c),
        _ => false,
    }
}
