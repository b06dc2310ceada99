//! Sums along one dimension and their broadcasting inverse.

use super::Args;
use crate::error::{param_err, Result};
use crate::tensor::Tensor;

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
    let (outer, size, inner) = split(&shape, dim);
    let x = a.f32(0)?;
    let mut out = crate::buffers::zeros_f32(outer * inner);
    for o in 0..outer {
        let dst = &mut out[o * inner..(o + 1) * inner];
        for s in 0..size {
            let src = &x[(o * size + s) * inner..][..inner];
            dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v);
        }
        dst.iter_mut().for_each(|d| *d *= scale);
    }
    let mut dims = shape;
    dims.remove(dim);
    Ok(vec![Tensor::from_f32(dims, out)])
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
    shape.insert(dim, size);
    let (outer, _, inner) = split(&shape, dim);
    let x = a.f32(0)?;
    let mut out = Vec::with_capacity(outer * size * inner);
    for o in 0..outer {
        let src = &x[o * inner..(o + 1) * inner];
        for _ in 0..size {
            out.extend(src.iter().map(|&v| v * scale));
        }
    }
    Ok(vec![Tensor::from_f32(shape, out)])
}

/// Sum of all elements (f64 accumulation), as a tensor of shape [].
pub fn sum_all(a: &mut Args) -> Result<Vec<Tensor>> {
    let s: f64 = a.f32(0)?.iter().map(|&v| v as f64).sum();
    Ok(vec![Tensor::from_f32(vec![], vec![s as f32])])
}
