//! The lane layout shared by the portable and the vector statistics sums
//! (`simd.rs`, `lane_sums_kernels.rs`), and the bit mask of a ragged tail, in
//! a module of their own so that neither of those files imports the other's
//! types.

/// The bit mask (as AVX-512 takes it) of the lanes `l < n`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn mask(n: usize) -> std::arch::x86_64::__mmask16 {
    if n >= 16 {
        0xffff
    } else {
        ((1u32 << n) - 1) as u16
    }
}

/// f32 lanes of the sums: element `i` of a slice goes to lane `i % 16`.
pub(crate) const LANES: usize = 16;

/// Elements per f32 lane block before the block folds into f64.
pub(crate) const BLOCK: usize = 256;

/// Per-lane f64 sums `[first, second]`: element `i` of a slice goes to
/// lane `i % 16`. The statistics kernels add into these, so a channel's many
/// planes fold into f64 lane by lane, with one horizontal sum at the end
/// ([`lane_total`]).
pub type LaneSums = [[f64; LANES]; 2];

/// The lanes of `acc` added in order.
pub fn lane_total(acc: &LaneSums) -> [f64; 2] {
    acc.map(|lanes| lanes.iter().sum())
}
