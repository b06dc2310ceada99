//! The batch-norm statistics sums of [`super::simd`] on 16-lane vectors, at
//! AVX-512 and at AVX2 (`lane_sums_kernels.rs`, written once over
//! [`super::vec16::F32x16`]), bit-identical to the portable loops.

crate::cpu::vec16::kernels_at_each_level!(pub(crate), "lane_sums_kernels.rs");
