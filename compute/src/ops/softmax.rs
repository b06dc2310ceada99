//! Softmax and log-softmax along one dimension, with an input scale
//! (`softmax(scale * x)`, MACER's inverse temperature beta): validation,
//! then the kernel of the inputs' device (`cpu::softmax`, `gpu::softmax`).

use super::elementwise::all_f32;
use super::Args;
use crate::cpu::softmax::{self as cpu, Lanes};
use crate::error::{param_err, Result};
use crate::gpu::softmax as gpu;
use crate::tensor::{Device, Tensor};

/// The lanes of input 0 along the `dim` parameter, after checking that
/// every input is f32 of that shape. Params: dim, scale (default 1).
fn lanes(a: &Args) -> Result<(Lanes, f32)> {
    for i in 1..a.ins.len() {
        a.same_shape(0, i)?;
    }
    let shape = &a.input(0).shape;
    let dim = a.usize(0, "dim")?;
    if dim >= shape.len() {
        return param_err(a.op, format!("dim {dim} out of range for shape {shape:?}"));
    }
    let scale = a.param_or(1, "scale", 1.0)? as f32;
    all_f32(a)?;
    let l = Lanes {
        outer: shape[..dim].iter().product(),
        size: shape[dim],
        inner: shape[dim + 1..].iter().product(),
    };
    Ok((l, scale))
}

type CpuForward = fn(Lanes, &[f32], f32) -> Vec<f32>;
type CpuBackward = fn(Lanes, &[f32], &[f32], f32) -> Vec<f32>;

fn forward(a: &Args, cpu: CpuForward, gpu: gpu::Forward) -> Result<Vec<Tensor>> {
    let (l, scale) = lanes(a)?;
    let shape = a.input(0).shape.clone();
    Ok(vec![match a.device()? {
        Device::Cpu => Tensor::from_f32(shape, cpu(l, a.f32(0)?, scale)),
        Device::Gpu => Tensor::from_gpu(shape, gpu(l, a.input(0).gpu(a.op, 0)?, scale)),
    }])
}

fn backward(a: &Args, cpu: CpuBackward, gpu: gpu::Backward) -> Result<Vec<Tensor>> {
    let (l, scale) = lanes(a)?;
    let shape = a.input(0).shape.clone();
    Ok(vec![match a.device()? {
        Device::Cpu => Tensor::from_f32(shape, cpu(l, a.f32(0)?, a.f32(1)?, scale)),
        Device::Gpu => {
            let (y, dy) = (a.input(0).gpu(a.op, 0)?, a.input(1).gpu(a.op, 1)?);
            Tensor::from_gpu(shape, gpu(l, y, dy, scale))
        }
    }])
}

/// Params: dim, scale (default 1).
pub fn softmax(a: &mut Args) -> Result<Vec<Tensor>> {
    forward(a, cpu::softmax, gpu::softmax)
}

/// Inputs: y = softmax(scale x), dy. Params: dim, scale.
pub fn softmax_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    backward(a, cpu::softmax_backward, gpu::softmax_backward)
}

/// Params: dim, scale (default 1).
pub fn log_softmax(a: &mut Args) -> Result<Vec<Tensor>> {
    forward(a, cpu::log_softmax, gpu::log_softmax)
}

/// Inputs: y = log_softmax(scale x), dy. Params: dim, scale.
pub fn log_softmax_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    backward(a, cpu::log_softmax_backward, gpu::log_softmax_backward)
}
