//! The CPU device: kernels on host slices, run on the pool from [`crate::pool`].
//!
//! Every kernel splits work the same way for a given shape, whatever the
//! thread count, and reduces partial sums in a fixed order, so results are
//! bit-identical from run to run.

pub mod certify;
pub mod concat;
pub mod conv;
pub mod elementwise;
pub mod gemm;
pub mod gemm256;
pub mod gemm512;
pub mod gemm_level;
pub mod index;
#[cfg(target_arch = "x86_64")]
mod lane_sums;
pub mod lanes;
pub mod linear;
pub mod macer;
pub mod norm;
pub mod optim;
pub mod pool2d;
pub mod random;
pub mod reduce;
pub mod simd;
pub mod softmax;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(target_arch = "x86_64")]
mod vec16;
pub mod winograd;
pub mod winograd_wgrad;

/// The SIMD level the kernels dispatch to ("avx512", "avx2" or "portable").
pub fn simd_level() -> &'static str {
    simd::level_name(simd::level())
}

/// Work items per parallel task for elementwise loops: big enough that task
/// overhead is noise, fixed so the split never depends on the thread count.
pub const CHUNK: usize = 1 << 14;
