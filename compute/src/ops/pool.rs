//! Max and average pooling (square window, no padding).

use super::Args;
use crate::cpu::pool2d::{avg_backward, avg_forward, max_backward, max_forward};
use crate::error::{param_err, shape_err, Result};
use crate::geometry::PoolGeom;
use crate::tensor::Tensor;

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

fn out_shape(s: &[usize], g: &PoolGeom) -> Vec<usize> {
    vec![s[0], s[1], g.ho, g.wo]
}

/// Params: kernel, stride. Outputs: y, argmax indices (i32, within each plane).
pub fn max_pool2d(a: &mut Args) -> Result<Vec<Tensor>> {
    let s = a.rank(0, 4)?.to_vec();
    let g = geometry(a, &s, s[2], s[3])?;
    let n = g.planes * g.ho * g.wo;
    let (mut y, mut idx) = (crate::buffers::uninit_f32(n), crate::buffers::uninit_i32(n));
    max_forward(g, a.f32(0)?, &mut y, &mut idx);
    Ok(vec![
        Tensor::from_f32(out_shape(&s, &g), y),
        Tensor::from_i32(out_shape(&s, &g), idx),
    ])
}

/// Inputs: dy, indices. Params: kernel, stride, H, W (the input's size).
pub fn max_pool2d_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    let s = a.rank(0, 4)?.to_vec();
    if a.input(1).shape != s {
        return shape_err(a.op, format!("dy {s:?} vs indices {:?}", a.input(1).shape));
    }
    let (h, w) = (a.positive(2, "height")?, a.positive(3, "width")?);
    let g = geometry(a, &s, h, w)?;
    if (g.ho, g.wo) != (s[2], s[3]) {
        return shape_err(a.op, format!("dy {s:?} does not pool from {h}x{w}"));
    }
    let idx = a.i32(1)?;
    if idx.iter().any(|&i| i < 0 || i as usize >= h * w) {
        return param_err(a.op, "index outside the input plane");
    }
    let mut dx = crate::buffers::uninit_f32(g.planes * h * w);
    max_backward(g, a.f32(0)?, idx, &mut dx);
    Ok(vec![Tensor::from_f32(vec![s[0], s[1], h, w], dx)])
}

/// Params: kernel, stride.
pub fn avg_pool2d(a: &mut Args) -> Result<Vec<Tensor>> {
    let s = a.rank(0, 4)?.to_vec();
    let g = geometry(a, &s, s[2], s[3])?;
    let mut y = crate::buffers::uninit_f32(g.planes * g.ho * g.wo);
    avg_forward(g, a.f32(0)?, &mut y);
    Ok(vec![Tensor::from_f32(out_shape(&s, &g), y)])
}

/// Inputs: dy. Params: kernel, stride, H, W.
pub fn avg_pool2d_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    let s = a.rank(0, 4)?.to_vec();
    let (h, w) = (a.positive(2, "height")?, a.positive(3, "width")?);
    let g = geometry(a, &s, h, w)?;
    if (g.ho, g.wo) != (s[2], s[3]) {
        return shape_err(a.op, format!("dy {s:?} does not pool from {h}x{w}"));
    }
    let mut dx = crate::buffers::uninit_f32(g.planes * h * w);
    avg_backward(g, a.f32(0)?, &mut dx);
    Ok(vec![Tensor::from_f32(vec![s[0], s[1], h, w], dx)])
}
