//! Max and average pooling (square window, no padding).

use super::Args;
use crate::error::{param_err, shape_err, Result};
use crate::geometry::PoolGeom;
use crate::tensor::{DType, Device, Tensor};
use crate::{cpu, gpu};

/// Geometry from an NCHW shape and params (kernel, stride).
fn geometry(a: &Args, shape: &[usize], h: usize, w: usize) -> Result<PoolGeom> {
    let k = a.positive(0, "kernel")?;
    let stride = a.positive(1, "stride")?;
    if h < k || w < k {
        return param_err(a.op, format!("kernel {k} larger than input {h}x{w}"));
    }
    Ok(PoolGeom {
        planes: shape[0] * shape[1],
        h,
        w,
        k,
        stride,
        ho: (h - k) / stride + 1,
        wo: (w - k) / stride + 1,
    })
}

/// The geometry of a backward (dy and params kernel, stride, H, W: the
/// input's size) and the input's shape.
fn backward_geometry(a: &Args) -> Result<(PoolGeom, Vec<usize>)> {
    let s = a.rank(0, 4)?.to_vec();
    let (h, w) = (a.positive(2, "height")?, a.positive(3, "width")?);
    let g = geometry(a, &s, h, w)?;
    if (g.ho, g.wo) != (s[2], s[3]) {
        return shape_err(a.op, format!("dy {s:?} does not pool from {h}x{w}"));
    }
    Ok((g, vec![s[0], s[1], h, w]))
}

/// The geometry of a forward and the output's shape.
fn forward_geometry(a: &Args) -> Result<(PoolGeom, Vec<usize>)> {
    let s = a.rank(0, 4)?.to_vec();
    let g = geometry(a, &s, s[2], s[3])?;
    Ok((g, vec![s[0], s[1], g.ho, g.wo]))
}

/// Params: kernel, stride. Outputs: y, argmax indices (i32, within each plane).
pub fn max_pool2d(a: &mut Args) -> Result<Vec<Tensor>> {
    let (g, out) = forward_geometry(a)?;
    a.dtypes(&[DType::F32])?;
    match a.device()? {
        Device::Cpu => cpu::pool2d::max_pool2d(a, g, out),
        Device::Gpu => gpu::pool2d::max_pool2d(a, g, out),
    }
}

/// Inputs: dy, indices. Params: kernel, stride, H, W (the input's size).
pub fn max_pool2d_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    let (g, out) = backward_geometry(a)?;
    if a.input(1).shape != a.input(0).shape {
        return shape_err(
            a.op,
            format!(
                "dy {:?} vs indices {:?}",
                a.input(0).shape,
                a.input(1).shape
            ),
        );
    }
    a.dtypes(&[DType::F32, DType::I32])?;
    match a.device()? {
        Device::Cpu => cpu::pool2d::max_pool2d_backward(a, g, out),
        Device::Gpu => gpu::pool2d::max_pool2d_backward(a, g, out),
    }
}

/// Params: kernel, stride.
pub fn avg_pool2d(a: &mut Args) -> Result<Vec<Tensor>> {
    let (g, out) = forward_geometry(a)?;
    a.dtypes(&[DType::F32])?;
    match a.device()? {
        Device::Cpu => cpu::pool2d::avg_pool2d(a, g, out),
        Device::Gpu => gpu::pool2d::avg_pool2d(a, g, out),
    }
}

/// Inputs: dy. Params: kernel, stride, H, W.
pub fn avg_pool2d_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    let (g, out) = backward_geometry(a)?;
    a.dtypes(&[DType::F32])?;
    match a.device()? {
        Device::Cpu => cpu::pool2d::avg_pool2d_backward(a, g, out),
        Device::Gpu => gpu::pool2d::avg_pool2d_backward(a, g, out),
    }
}
