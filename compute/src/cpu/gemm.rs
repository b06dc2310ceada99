//! Matrix multiplication through the `gemm` crate (runtime-dispatched
//! AVX-512 / AVX2+FMA / NEON micro-kernels).

use gemm::Parallelism;

/// The SIMD level of the gemm crate's kernels: it picks them by the CPU
/// alone, whatever `MACER_SIMD` says, and uses AVX-512 only when built with
/// the `gemm-avx512` feature (the default).
pub fn crate_level() -> u8 {
    let cpu = super::simd::detected_level();
    if cfg!(feature = "gemm-avx512") {
        cpu
    } else {
        cpu.min(super::simd::AVX2)
    }
}

/// A row-major or transposed view of a matrix: `rows x cols` with strides.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: isize,
    pub col_stride: isize,
}

impl<'a> Mat<'a> {
    /// A contiguous row-major `rows x cols` matrix.
    pub fn rm(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            row_stride: cols as isize,
            col_stride: 1,
        }
    }
    /// The transpose of a contiguous row-major `cols x rows` matrix.
    pub fn tr(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            row_stride: 1,
            col_stride: rows as isize,
        }
    }
}

/// `c = a * b` (or `c += a * b` with `accumulate`), `c` contiguous row-major.
/// `parallel` lets the GEMM use the current pool's threads; kernels that
/// already parallelise over images pass `false`.
pub fn matmul(a: Mat, b: Mat, c: &mut [f32], accumulate: bool, parallel: bool) {
    matmul_ld(a, b, c, b.cols, accumulate, parallel)
}

/// [`matmul`] into `c` row-major with row stride `ldc` (row `i` of the
/// product at `c[i * ldc..]`).
pub fn matmul_ld(a: Mat, b: Mat, c: &mut [f32], ldc: usize, accumulate: bool, parallel: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "gemm inner dimensions");
    assert!(ldc >= n, "gemm output stride");
    if m == 0 || n == 0 {
        return;
    }
    assert!(c.len() >= (m - 1) * ldc + n, "gemm output too small");
    if k == 0 {
        if !accumulate {
            c.chunks_mut(ldc).take(m).for_each(|row| row[..n].fill(0.0));
        }
        return;
    }
    let par = if parallel && m * n * k >= 1 << 18 {
        Parallelism::Rayon(rayon::current_num_threads())
    } else {
        Parallelism::None
    };
    // SAFETY: the views' extents are within their slices (checked by callers
    // through the shapes they were built from); `c` holds the m rows of n
    // elements at stride ldc (checked above).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            ldc as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride,
            a.row_stride,
            b.data.as_ptr(),
            b.col_stride,
            b.row_stride,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}
