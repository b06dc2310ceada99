//! Gaussian noise from Philox, addressed by (seed, offset): the caller keeps
//! the offset so every draw of a run is distinct and reproducible.

use rayon::prelude::*;

use super::Args;
use crate::cpu::CHUNK;
use crate::error::{param_err, Result};
use crate::philox::fill_normals;
use crate::tensor::Tensor;

/// Seed and offset params at `at` and `at + 1`; the offset must be a multiple of 4.
fn stream(a: &Args, at: usize) -> Result<(u64, u64)> {
    let seed = a.param(at, "seed")?;
    let offset = a.param(at + 1, "offset")?;
    if seed < 0.0 || seed.fract() != 0.0 || seed > 9_007_199_254_740_991.0 {
        return param_err(
            a.op,
            format!("seed must be a whole number in [0, 2^53), got {seed}"),
        );
    }
    if offset < 0.0 || offset.fract() != 0.0 || offset % 4.0 != 0.0 || offset > 9e15 {
        return param_err(
            a.op,
            format!("offset must be a whole multiple of 4, got {offset}"),
        );
    }
    Ok((seed as u64, offset as u64))
}

fn noise(len: usize, seed: u64, offset: u64) -> Vec<f32> {
    let mut z = crate::buffers::uninit_f32(len);
    z.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(i, c)| fill_normals(c, seed, offset + (i * CHUNK) as u64));
    z
}

/// Standard normals. Params: seed, offset, dims...
pub fn randn(a: &mut Args) -> Result<Vec<Tensor>> {
    let (seed, offset) = stream(a, 0)?;
    let dims = (2..a.params.len())
        .map(|i| a.usize(i, "dim"))
        .collect::<Result<Vec<_>>>()?;
    let n = dims.iter().product();
    Ok(vec![Tensor::from_f32(dims, noise(n, seed, offset))])
}

/// Repeats each row of x [n, ...] k times and adds sigma * N(0, 1):
/// output row `i * k + j` is `x[i] + noise`. Params: k, sigma, seed, offset.
pub fn tile_noise(a: &mut Args) -> Result<Vec<Tensor>> {
    let s = a.input(0).shape.clone();
    if s.is_empty() {
        return param_err(a.op, "x must have a batch dimension");
    }
    let k = a.positive(0, "k")?;
    let sigma = a.param(1, "sigma")? as f32;
    let (seed, offset) = stream(a, 2)?;
    let row: usize = s[1..].iter().product();
    let x = a.f32(0)?;
    let mut out = noise(s[0] * k * row, seed, offset);
    out.par_chunks_mut(row.max(1))
        .enumerate()
        .for_each(|(r, o)| {
            let src = &x[(r / k) * row..(r / k + 1) * row];
            o.iter_mut()
                .zip(src)
                .for_each(|(o, &v)| *o = v + sigma * *o);
        });
    let mut shape = s;
    shape[0] *= k;
    Ok(vec![Tensor::from_f32(shape, out)])
}
