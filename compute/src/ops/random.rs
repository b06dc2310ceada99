//! Gaussian noise from Philox, addressed by (seed, offset): the caller keeps
//! the offset so every draw of a run is distinct and reproducible. Both
//! devices draw the same stream ([`crate::philox`]).

use super::Args;
use crate::error::{param_err, Result};
use crate::tensor::{Device, Tensor};
use crate::{cpu, gpu};

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

/// Standard normals. Params: seed, offset, dims...
pub fn randn(a: &mut Args) -> Result<Vec<Tensor>> {
    let (seed, offset) = stream(a, 0)?;
    let dims = (2..a.params.len())
        .map(|i| a.usize(i, "dim"))
        .collect::<Result<Vec<_>>>()?;
    let n = dims.iter().product();
    Ok(vec![match a.device()? {
        Device::Cpu => Tensor::from_f32(dims, cpu::random::noise(n, seed, offset)),
        Device::Gpu => Tensor::from_gpu(dims, gpu::random::randn(n, seed, offset)?),
    }])
}

/// Repeats each row of x [n, ...] k times and adds sigma * N(0, 1):
/// output row `i * k + j` is `x[i] + noise`. Params: k, sigma, seed, offset.
pub fn tile_noise(a: &mut Args) -> Result<Vec<Tensor>> {
    let mut shape = a.input(0).shape.clone();
    if shape.is_empty() {
        return param_err(a.op, "x must have a batch dimension");
    }
    let k = a.positive(0, "k")?;
    let sigma = a.param(1, "sigma")? as f32;
    let (seed, offset) = stream(a, 2)?;
    let row: usize = shape[1..].iter().product();
    shape[0] *= k;
    Ok(vec![match a.device()? {
        Device::Cpu => {
            let out = cpu::random::tile_noise(a.f32(0)?, row, k, sigma, seed, offset);
            Tensor::from_f32(shape, out)
        }
        Device::Gpu => {
            let x = gpu::f32_data(a.input(0), a.op, 0)?;
            let out = gpu::random::tile_noise(x, row, k, sigma, seed, offset);
            Tensor::from_gpu(shape, out)
        }
    }])
}
