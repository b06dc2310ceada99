//! Sums along one dimension and their broadcasting inverse: validation,
//! then the kernel of the input's device (`cpu::reduce`, `gpu::reduce`).

use super::elementwise::all_f32;
use super::Args;
use crate::cpu::reduce as cpu;
use crate::error::{param_err, Result};
use crate::gpu::reduce as gpu;
use crate::tensor::{Device, Tensor};

/// Splits a shape around `dim` into (outer, size, inner).
fn split(shape: &[usize], dim: usize) -> (usize, usize, usize) {
    (
        shape[..dim].iter().product(),
        shape[dim],
        shape[dim + 1..].iter().product(),
    )
}

fn dim_param(a: &Args, rank: usize) -> Result<usize> {
    let dim = a.usize(0, "dim")?;
    if dim >= rank {
        return param_err(a.op, format!("dim {dim} out of range for rank {rank}"));
    }
    Ok(dim)
}

/// `scale * x.sum(dim)`. Params: dim, scale (default 1).
pub fn sum_dim(a: &mut Args) -> Result<Vec<Tensor>> {
    let shape = a.input(0).shape.clone();
    let dim = dim_param(a, shape.len())?;
    let scale = a.param_or(1, "scale", 1.0)? as f32;
    all_f32(a)?;
    let (outer, size, inner) = split(&shape, dim);
    let mut dims = shape;
    dims.remove(dim);
    Ok(vec![match a.device()? {
        Device::Cpu => Tensor::from_f32(dims, cpu::sum_dim(a.f32(0)?, outer, size, inner, scale)),
        Device::Gpu => {
            let x = a.input(0).gpu(a.op, 0)?;
            Tensor::from_gpu(dims, gpu::sum_dim(x, outer, size, inner, scale))
        }
    }])
}

/// Inserts `dim` of `size`, repeating `scale * x` along it. Params: dim, size, scale.
pub fn expand_dim(a: &mut Args) -> Result<Vec<Tensor>> {
    let mut shape = a.input(0).shape.clone();
    let dim = a.usize(0, "dim")?;
    if dim > shape.len() {
        return param_err(
            a.op,
            format!("dim {dim} out of range for rank {}", shape.len() + 1),
        );
    }
    let size = a.usize(1, "size")?;
    let scale = a.param_or(2, "scale", 1.0)? as f32;
    all_f32(a)?;
    shape.insert(dim, size);
    let (outer, _, inner) = split(&shape, dim);
    Ok(vec![match a.device()? {
        Device::Cpu => {
            Tensor::from_f32(shape, cpu::expand_dim(a.f32(0)?, outer, size, inner, scale))
        }
        Device::Gpu => {
            let x = a.input(0).gpu(a.op, 0)?;
            Tensor::from_gpu(shape, gpu::expand_dim(x, outer, size, inner, scale))
        }
    }])
}

/// Sum of all elements, as a tensor of shape [] (f64 accumulation on the
/// cpu, a pairwise f32 tree on the gpu).
pub fn sum_all(a: &mut Args) -> Result<Vec<Tensor>> {
    all_f32(a)?;
    Ok(vec![match a.device()? {
        Device::Cpu => Tensor::from_f32(vec![], vec![cpu::sum_all(a.f32(0)?)]),
        Device::Gpu => Tensor::from_gpu(vec![], gpu::sum_all(a.input(0).gpu(a.op, 0)?)),
    }])
}
