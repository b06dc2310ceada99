//! Gaussian noise on the GPU: the cpu's Philox stream ([`crate::philox`]),
//! one thread per block of four normals.

use super::{context, grid, GpuData, Kernel};
use crate::error::Result;
use crate::tensor::DType;

const RANDN: Kernel = Kernel {
    name: "random.randn",
    source: concat!(
        include_str!("shaders/philox.wgsl"),
        include_str!("shaders/randn.wgsl")
    ),
    entry: "randn",
};

const TILE_NOISE: Kernel = Kernel {
    name: "random.tile_noise",
    source: concat!(
        include_str!("shaders/philox.wgsl"),
        include_str!("shaders/tile_noise.wgsl")
    ),
    entry: "tile_noise",
};

/// Parameter words of stream `seed` from position `offset` (a multiple of 4):
/// the seed and the first block, low words first.
fn stream_words(seed: u64, offset: u64) -> [u32; 4] {
    let first = offset / 4;
    [
        seed as u32,
        (seed >> 32) as u32,
        first as u32,
        (first >> 32) as u32,
    ]
}

/// Threads for `n` normals, four per thread.
fn blocks(n: usize) -> [u32; 3] {
    grid(n.div_ceil(4))
}

/// The normals at positions `offset..offset + len` of stream `seed`.
pub fn randn(len: usize, seed: u64, offset: u64) -> Result<GpuData> {
    let gpu = context()?;
    let out = gpu.alloc(DType::F32, len);
    let mut params = vec![len as u32];
    params.extend(stream_words(seed, offset));
    gpu.dispatch(&RANDN, &[&out], &params, blocks(len));
    Ok(out)
}

/// Each `row`-element row of `x` repeated `k` times plus `sigma` times the
/// normals at positions `offset..` of stream `seed`, as the cpu's.
pub fn tile_noise(
    x: &GpuData,
    row: usize,
    k: usize,
    sigma: f32,
    seed: u64,
    offset: u64,
) -> GpuData {
    let gpu = x.gpu();
    let n = x.len() * k;
    let out = gpu.alloc(DType::F32, n);
    let mut params = vec![n as u32, row as u32, k as u32, super::f(sigma)];
    params.extend(stream_words(seed, offset));
    gpu.dispatch(&TILE_NOISE, &[x, &out], &params, blocks(n));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::testing::{gpu, max_rel_diff, pair, run_both, values};
    use crate::philox::{philox4x32, uniform};
    use crate::tensor::Tensor;

    const TEST: &str = concat!(
        include_str!("shaders/philox.wgsl"),
        include_str!("shaders/philox_test.wgsl")
    );

    /// Runs a test entry over `words`, returning `out_len` words.
    fn run_words(entry: &'static str, words: &[u32], n: usize, out_len: usize) -> Vec<u32> {
        let gpu = gpu();
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let input = gpu.upload(DType::I32, &bytes);
        let out = gpu.alloc(DType::I32, out_len);
        let kernel = Kernel {
            name: entry,
            source: TEST,
            entry,
        };
        gpu.dispatch(
            &kernel,
            &[&input, &out],
            &[n as u32],
            [n.div_ceil(256) as u32, 1, 1],
        );
        let bytes = out.read_bytes().expect("read");
        bytes
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    /// Test words: Philox output shifted right by 0..31 bits, so every
    /// magnitude occurs, plus the extremes.
    fn words(n: usize, seed: u32) -> Vec<u32> {
        let mut w: Vec<u32> = (0..n as u32)
            .map(|i| philox4x32([i, 0, 0, 0], [seed, 0])[0] >> (i % 32))
            .collect();
        w.extend([0, 1, 0xffff_ffff, 0xffff_fffe, 0x7fff_ffff, 0x8000_0000]);
        w
    }

    #[test]
    fn philox_words_match_cpu_bit_for_bit() {
        let input = words(600, 3);
        let blocks: Vec<&[u32]> = input.chunks_exact(6).collect();
        let got = run_words("philox_words", &input, blocks.len(), 4 * blocks.len());
        for (j, b) in blocks.iter().enumerate() {
            let want = philox4x32([b[0], b[1], b[2], b[3]], [b[4], b[5]]);
            assert_eq!(got[4 * j..4 * j + 4], want, "block {j}: {b:x?}");
        }
    }

    #[test]
    fn uniforms_match_cpu_bit_for_bit() {
        // Random words hit every rounding case of the 24-bit mantissa
        // (a tie in 1 of 2^(shift - 1) words above 2^24); the extremes are added.
        let input = words(20_000, 4);
        let got = run_words("uniform_bits", &input, input.len(), input.len());
        for (&w, &g) in input.iter().zip(&got) {
            assert_eq!(g, uniform(w).to_bits(), "word {w:#x}");
        }
    }

    // The normals differ from the cpu's only by the rounding of log, sqrt
    // and cos/sin (the uniforms are bit-identical). Over 10^6 normals on
    // lavapipe: at most 1.8e-7 * (1 + |z|), 69% bit-identical. log and
    // cos/sin are polynomials in correctly rounded operations (philox.wgsl),
    // so another adapter differs mainly by its sqrt (2.5 ulp allowed):
    // 2e-6 * (1 + |z|) leaves ten times the measured error.
    const NORMAL_TOL: f32 = 2e-6;

    #[test]
    fn randn_matches_cpu_stream() {
        // A seed above 2^32 and a first block just below 2^32: the draw
        // crosses into the counter's high word. 4,099 elements: not a
        // multiple of four or of the workgroup.
        let seed = (1u64 << 40) + 12_345;
        let offset = 4 * ((1u64 << 32) - 300);
        let params = [seed as f64, offset as f64, 1.0, 4099.0];
        for (shape, c, g) in run_both("randn", &[], &[], &params) {
            assert_eq!(shape, vec![1, 4099]);
            let err = max_rel_diff(&c, &g);
            assert!(err <= NORMAL_TOL, "max error {err}");
        }
    }

    #[test]
    fn tile_noise_matches_cpu() {
        // 3 images of 5 x 7 tiled 4 times: rows of 35, not aligned to the
        // blocks of four, so a block spans two rows and two images.
        let x = Tensor::from_f32(vec![3, 5, 7], values(105, 5));
        let (xc, xg) = pair(x);
        let params = [4.0, 0.25, 99.0, 4000.0];
        for (shape, c, g) in run_both("tile_noise", &[xc], &[xg], &params) {
            assert_eq!(shape, vec![12, 5, 7]);
            let err = max_rel_diff(&c, &g);
            assert!(err <= NORMAL_TOL, "max error {err}");
        }
    }
}
