//! Gaussian noise from Philox on the host.

use rayon::prelude::*;

use super::CHUNK;
use crate::philox::fill_normals;

/// The normals at positions `offset..offset + len` of stream `seed`.
pub fn noise(len: usize, seed: u64, offset: u64) -> Vec<f32> {
    let mut z = crate::buffers::uninit_f32(len);
    z.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(i, c)| fill_normals(c, seed, offset + (i * CHUNK) as u64));
    z
}

/// Each `row`-element row of `x` repeated `k` times, plus `sigma` times the
/// normals at positions `offset..` of stream `seed`: output row `i * k + j`
/// is `x[i] + noise`.
pub fn tile_noise(x: &[f32], row: usize, k: usize, sigma: f32, seed: u64, offset: u64) -> Vec<f32> {
    let mut out = noise(x.len() * k, seed, offset);
    out.par_chunks_mut(row.max(1))
        .enumerate()
        .for_each(|(r, o)| {
            let src = &x[(r / k) * row..(r / k + 1) * row];
            o.iter_mut()
                .zip(src)
                .for_each(|(o, &v)| *o = v + sigma * *o);
        });
    out
}
