//! Philox 4x32-10 (Salmon et al., SC'11): a counter-based generator, so the
//! noise for element `i` of a draw depends only on (seed, offset + i) and is
//! the same whatever the thread count or device.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

#[inline]
fn mulhilo(a: u32, b: u32) -> (u32, u32) {
    let p = (a as u64) * (b as u64);
    ((p >> 32) as u32, p as u32)
}

/// Ten rounds of Philox on a 128-bit counter with a 64-bit key.
#[inline]
pub fn philox4x32(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (ctr, key);
    for _ in 0..10 {
        let (hi0, lo0) = mulhilo(M0, c[0]);
        let (hi1, lo1) = mulhilo(M1, c[2]);
        c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
        k = [k[0].wrapping_add(W0), k[1].wrapping_add(W1)];
    }
    c
}

/// Uniform in (0, 1]: never 0, so its log is finite.
#[inline]
pub(crate) fn uniform(x: u32) -> f32 {
    ((x as f64 + 1.0) * (1.0 / 4_294_967_296.0)) as f32
}

/// Four standard normals for block `block` of stream `seed` (Box-Muller).
#[inline]
pub fn normals4(seed: u64, block: u64) -> [f32; 4] {
    let r = philox4x32(
        [block as u32, (block >> 32) as u32, 0, 0],
        [seed as u32, (seed >> 32) as u32],
    );
    let mut out = [0f32; 4];
    for pair in 0..2 {
        let u1 = uniform(r[2 * pair]);
        let u2 = uniform(r[2 * pair + 1]);
        let radius = (-2.0 * u1.ln()).sqrt();
        let angle = std::f32::consts::TAU * u2;
        out[2 * pair] = radius * angle.cos();
        out[2 * pair + 1] = radius * angle.sin();
    }
    out
}

/// Fills `out` with the normals at positions `offset..offset+out.len()` of
/// stream `seed`. `offset` must be a multiple of 4 so blocks line up.
pub fn fill_normals(out: &mut [f32], seed: u64, offset: u64) {
    debug_assert_eq!(offset % 4, 0);
    for (b, chunk) in out.chunks_mut(4).enumerate() {
        let z = normals4(seed, offset / 4 + b as u64);
        chunk.copy_from_slice(&z[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn philox_matches_random123_known_answer() {
        // Known-answer vector from Random123's kat_vectors (philox4x32 10 rounds).
        let out = philox4x32([0, 0, 0, 0], [0, 0]);
        assert_eq!(out, [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]);
        let out = philox4x32(
            [0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff],
            [0xffff_ffff, 0xffff_ffff],
        );
        assert_eq!(out, [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]);
    }

    #[test]
    fn normals_have_unit_moments() {
        let mut v = vec![0f32; 400_000];
        fill_normals(&mut v, 7, 0);
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "var {var}");
    }
}
