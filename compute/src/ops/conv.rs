//! conv2d forward and backward (PyTorch's nn.Conv2d layout, square stride and padding).

use super::Args;
use crate::cpu::conv::{conv2d_backward as cpu_backward, conv2d_forward as cpu_forward, ConvGeom};
use crate::error::{param_err, shape_err, Result};
use crate::tensor::Tensor;

/// Reads x [N, C, H, W], w [O, C, kh, kw] and params (stride, pad).
fn geometry(a: &Args) -> Result<ConvGeom> {
    let xs = a.rank(0, 4)?.to_vec();
    let ws = a.rank(1, 4)?.to_vec();
    let stride = a.positive(0, "stride")?;
    let pad = a.usize(1, "padding")?;
    if xs[1] != ws[1] {
        return shape_err(
            a.op,
            format!(
                "input {xs:?} has {} channels, weight {ws:?} expects {}",
                xs[1], ws[1]
            ),
        );
    }
    let (hp, wp) = (xs[2] + 2 * pad, xs[3] + 2 * pad);
    if hp < ws[2] || wp < ws[3] {
        return param_err(
            a.op,
            format!(
                "kernel {}x{} larger than padded input {hp}x{wp}",
                ws[2], ws[3]
            ),
        );
    }
    Ok(ConvGeom {
        n: xs[0],
        c: xs[1],
        h: xs[2],
        w: xs[3],
        o: ws[0],
        kh: ws[2],
        kw: ws[3],
        stride,
        pad,
        ho: (hp - ws[2]) / stride + 1,
        wo: (wp - ws[3]) / stride + 1,
    })
}

/// Inputs: x, w, optional bias [O]. Params: stride, padding.
pub fn conv2d(a: &mut Args) -> Result<Vec<Tensor>> {
    let g = geometry(a)?;
    let bias = if a.ins.len() == 3 {
        if a.input(2).shape != [g.o] {
            return shape_err(
                a.op,
                format!("bias {:?} for {} output channels", a.input(2).shape, g.o),
            );
        }
        Some(a.f32(2)?)
    } else {
        None
    };
    let mut y = crate::buffers::uninit_f32(g.n * g.o * g.p());
    cpu_forward(&g, a.f32(0)?, a.f32(1)?, bias, &mut y);
    Ok(vec![Tensor::from_f32(vec![g.n, g.o, g.ho, g.wo], y)])
}

/// Inputs: x, w, dy. Params: stride, padding, with_bias, need_dx.
/// Outputs: [dx if need_dx], dw, [db if with_bias].
pub fn conv2d_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    let g = geometry(a)?;
    let with_bias = a.flag(2, "with_bias")?;
    let need_dx = a.flag(3, "need_dx")?;
    if a.input(2).shape != [g.n, g.o, g.ho, g.wo] {
        return shape_err(
            a.op,
            format!(
                "dy {:?}, expected {:?}",
                a.input(2).shape,
                [g.n, g.o, g.ho, g.wo]
            ),
        );
    }
    let mut dx = need_dx.then(|| crate::buffers::uninit_f32(g.n * g.c * g.h * g.w));
    let (dw, db) = cpu_backward(
        &g,
        a.f32(0)?,
        a.f32(1)?,
        a.f32(2)?,
        dx.as_deref_mut(),
        with_bias,
    );
    let mut out = Vec::with_capacity(3);
    if let Some(dx) = dx {
        out.push(Tensor::from_f32(a.input(0).shape.clone(), dx));
    }
    out.push(Tensor::from_f32(a.input(1).shape.clone(), dw));
    if let Some(db) = db {
        out.push(Tensor::from_f32(vec![g.o], db));
    }
    Ok(out)
}
