//! Row gathers and scatters, top-2, and row selection (masked selection is
//! an index_select with the kept row numbers): validation, then the kernel
//! of the inputs' device (`cpu::index`, `gpu::index`).
//!
//! The cpu kernels refuse an out-of-range index; the gpu ones cannot without
//! reading the indices back, so there a gathered or selected element with an
//! out-of-range index is NaN and a scattered or added one is dropped.

use super::Args;
use crate::cpu::index as cpu;
use crate::error::{shape_err, Result};
use crate::gpu::index as gpu;
use crate::tensor::{DType, Device, Tensor};

/// Input 0 f32, input 1 (the indices) i32.
fn values_and_indices(a: &Args) -> Result<()> {
    a.dtypes(&[DType::F32, DType::I32])
}

/// `out[r, j] = x[r, idx[r, j]]`. Inputs: x [n, C], idx i32 [n, k].
pub fn gather_rows(a: &mut Args) -> Result<Vec<Tensor>> {
    let xs = a.rank(0, 2)?.to_vec();
    let is = a.rank(1, 2)?.to_vec();
    if is[0] != xs[0] {
        return shape_err(
            a.op,
            format!("{} rows of x, {} rows of indices", xs[0], is[0]),
        );
    }
    values_and_indices(a)?;
    Ok(vec![match a.device()? {
        Device::Cpu => {
            let out = cpu::gather_rows(a.op, a.f32(0)?, xs[1], a.i32(1)?, is[1])?;
            Tensor::from_f32(is, out)
        }
        Device::Gpu => {
            let (x, idx) = (a.input(0).gpu(a.op, 0)?, a.input(1).gpu(a.op, 1)?);
            Tensor::from_gpu(is.clone(), gpu::gather_rows(x, xs[1], idx, is[1]))
        }
    }])
}

/// Adjoint of gather_rows: `out[r, idx[r, j]] += d[r, j]`. Inputs: d, idx. Params: C.
pub fn scatter_rows(a: &mut Args) -> Result<Vec<Tensor>> {
    let ds = a.rank(0, 2)?.to_vec();
    if a.input(1).shape != ds {
        return shape_err(
            a.op,
            format!("values {ds:?} vs indices {:?}", a.input(1).shape),
        );
    }
    let cols = a.positive(0, "columns")?;
    values_and_indices(a)?;
    let shape = vec![ds[0], cols];
    Ok(vec![match a.device()? {
        Device::Cpu => {
            let out = cpu::scatter_rows(a.op, a.f32(0)?, a.i32(1)?, [ds[0], ds[1]], cols)?;
            Tensor::from_f32(shape, out)
        }
        Device::Gpu => {
            let (d, idx) = (a.input(0).gpu(a.op, 0)?, a.input(1).gpu(a.op, 1)?);
            Tensor::from_gpu(shape, gpu::scatter_rows(d, idx, [ds[0], ds[1]], cols))
        }
    }])
}

/// The two largest values of each row and their columns (first on ties).
/// Input: x [n, C] with C >= 2. Outputs: values [n, 2], indices i32 [n, 2].
pub fn topk2(a: &mut Args) -> Result<Vec<Tensor>> {
    let s = a.rank(0, 2)?.to_vec();
    if s[1] < 2 {
        return shape_err(a.op, format!("need at least 2 columns, got {:?}", s));
    }
    a.dtype(0, DType::F32)?;
    let shape = vec![s[0], 2];
    Ok(match a.device()? {
        Device::Cpu => {
            let (vals, idx) = cpu::topk2(a.f32(0)?, s[1]);
            vec![
                Tensor::from_f32(shape.clone(), vals),
                Tensor::from_i32(shape, idx),
            ]
        }
        Device::Gpu => {
            let (vals, idx) = gpu::topk2(a.input(0).gpu(a.op, 0)?, s[1]);
            vec![
                Tensor::from_gpu(shape.clone(), vals),
                Tensor::from_gpu(shape, idx),
            ]
        }
    })
}

/// Rows `idx` of x along dim 0. Inputs: x [n, ...], idx i32 [m].
pub fn index_select(a: &mut Args) -> Result<Vec<Tensor>> {
    let xs = a.input(0).shape.clone();
    if xs.is_empty() {
        return shape_err(a.op, "x must have at least one dimension");
    }
    let m = a.rank(1, 1)?[0];
    values_and_indices(a)?;
    let row: usize = xs[1..].iter().product();
    let mut shape = xs.clone();
    shape[0] = m;
    Ok(vec![match a.device()? {
        Device::Cpu => {
            let out = cpu::index_select(a.op, a.f32(0)?, xs[0], row, a.i32(1)?)?;
            Tensor::from_f32(shape, out)
        }
        Device::Gpu => {
            let (x, idx) = (a.input(0).gpu(a.op, 0)?, a.input(1).gpu(a.op, 1)?);
            Tensor::from_gpu(shape, gpu::index_select(x, xs[0], row, idx))
        }
    }])
}

/// Adjoint of index_select: `out[idx[j]] += d[j]`. Inputs: d [m, ...], idx [m]. Params: n.
pub fn index_add(a: &mut Args) -> Result<Vec<Tensor>> {
    let ds = a.input(0).shape.clone();
    if ds.is_empty() || a.rank(1, 1)?[0] != ds[0] {
        return shape_err(
            a.op,
            format!("values {ds:?} vs indices {:?}", a.input(1).shape),
        );
    }
    let n = a.usize(0, "rows")?;
    values_and_indices(a)?;
    let row: usize = ds[1..].iter().product();
    let mut shape = ds;
    shape[0] = n;
    Ok(vec![match a.device()? {
        Device::Cpu => {
            let out = cpu::index_add(a.op, a.f32(0)?, a.i32(1)?, n, row)?;
            Tensor::from_f32(shape, out)
        }
        Device::Gpu => {
            let (d, idx) = (a.input(0).gpu(a.op, 0)?, a.input(1).gpu(a.op, 1)?);
            Tensor::from_gpu(shape, gpu::index_add(d, idx, n, row))
        }
    }])
}
