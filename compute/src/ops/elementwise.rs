//! Elementwise ops on same-shape tensors: validation, then the kernel of
//! the inputs' device (`cpu::elementwise`, `gpu::elementwise`).

use super::Args;
use crate::cpu::elementwise as cpu;
use crate::error::{shape_err, Result};
use crate::gpu::elementwise as gpu;
use crate::tensor::{DType, Device, Storage, Tensor};

/// Fails unless every input is f32.
pub(super) fn all_f32(a: &Args) -> Result<()> {
    (0..a.ins.len()).try_for_each(|i| a.dtype(i, DType::F32))
}

/// Two f32 inputs of one shape.
fn check_binary(a: &Args) -> Result<()> {
    a.same_shape(0, 1)?;
    all_f32(a)
}

pub fn add(a: &mut Args) -> Result<Vec<Tensor>> {
    check_binary(a)?;
    a.dispatch(cpu::add, gpu::add)
}

pub fn sub(a: &mut Args) -> Result<Vec<Tensor>> {
    check_binary(a)?;
    a.dispatch(cpu::sub, gpu::sub)
}

pub fn mul(a: &mut Args) -> Result<Vec<Tensor>> {
    check_binary(a)?;
    a.dispatch(cpu::mul, gpu::mul)
}

/// `scale * x + shift`. Params: scale, shift.
pub fn affine(a: &mut Args) -> Result<Vec<Tensor>> {
    a.param(0, "scale")?;
    a.param_or(1, "shift", 0.0)?;
    all_f32(a)?;
    a.dispatch(cpu::affine, gpu::affine)
}

pub fn relu(a: &mut Args) -> Result<Vec<Tensor>> {
    all_f32(a)?;
    a.dispatch(cpu::relu, gpu::relu)
}

/// `max(a + b, 0)` in one pass (a residual sum and its ReLU). Its backward
/// is `relu_backward` of its output, the same gradient for both inputs.
pub fn add_relu(a: &mut Args) -> Result<Vec<Tensor>> {
    check_binary(a)?;
    a.dispatch(cpu::add_relu, gpu::add_relu)
}

/// Inputs: relu output y, upstream gradient dy.
pub fn relu_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    check_binary(a)?;
    a.dispatch(cpu::relu_backward, gpu::relu_backward)
}

pub fn log(a: &mut Args) -> Result<Vec<Tensor>> {
    all_f32(a)?;
    a.dispatch(cpu::log, gpu::log)
}

/// The square root (an L2 norm from a sum of squares).
pub fn sqrt(a: &mut Args) -> Result<Vec<Tensor>> {
    all_f32(a)?;
    a.dispatch(cpu::sqrt, gpu::sqrt)
}

/// `1 / x` (a per-row scale from a norm).
pub fn recip(a: &mut Args) -> Result<Vec<Tensor>> {
    all_f32(a)?;
    a.dispatch(cpu::recip, gpu::recip)
}

/// Inputs: x, dy.
pub fn log_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    check_binary(a)?;
    a.dispatch(cpu::log_backward, gpu::log_backward)
}

/// The standard normal quantile (f64 on the cpu, an f32 algorithm on the gpu).
pub fn ndtri(a: &mut Args) -> Result<Vec<Tensor>> {
    all_f32(a)?;
    a.dispatch(cpu::ndtri, gpu::ndtri)
}

/// Inputs: y = ndtri(p), dy. d ndtri / dp = sqrt(2 pi) exp(y^2 / 2).
pub fn ndtri_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    check_binary(a)?;
    a.dispatch(cpu::ndtri_backward, gpu::ndtri_backward)
}

/// Params: the new dims; one of them may be -1 (inferred). Either device:
/// the output is a copy on the input's device.
pub fn reshape(a: &mut Args) -> Result<Vec<Tensor>> {
    let numel = a.input(0).numel();
    let mut dims = Vec::with_capacity(a.params.len());
    let mut infer = None;
    for (i, &d) in a.params.iter().enumerate() {
        if d == -1.0 && infer.is_none() {
            infer = Some(i);
            dims.push(1);
        } else {
            dims.push(a.usize(i, "dim")?);
        }
    }
    let known: usize = dims.iter().product();
    if let Some(i) = infer {
        if known == 0 || !numel.is_multiple_of(known) {
            return shape_err(
                a.op,
                format!("cannot infer a dim: {numel} elements into {:?}", a.params),
            );
        }
        dims[i] = numel / known;
    }
    if dims.iter().product::<usize>() != numel {
        return shape_err(
            a.op,
            format!("{:?} ({numel} elements) into {dims:?}", a.input(0).shape),
        );
    }
    let mut t = a.input(0).duplicate();
    t.shape = dims;
    Ok(vec![t])
}

/// Params: value, dims... On the caller's device (no tensor inputs).
pub fn full(a: &mut Args) -> Result<Vec<Tensor>> {
    let v = a.param(0, "value")? as f32;
    let dims = (1..a.params.len())
        .map(|i| a.usize(i, "dim"))
        .collect::<Result<Vec<_>>>()?;
    Ok(vec![match a.device()? {
        Device::Cpu => cpu::full(dims, v),
        Device::Gpu => gpu::full(dims, v)?,
    }])
}

/// In place: `dst = src` (same shape and dtype), so handles stay valid.
pub fn copy_inplace(a: &mut Args) -> Result<Vec<Tensor>> {
    let src = a.ins[0];
    if a.muts[0].shape != src.shape || a.muts[0].dtype() != src.dtype() {
        return shape_err(
            a.op,
            format!(
                "{:?} {} = {:?} {}",
                a.muts[0].shape,
                a.muts[0].dtype().name(),
                src.shape,
                src.dtype().name()
            ),
        );
    }
    a.device()?;
    match (&mut a.muts[0].storage, &src.storage) {
        (Storage::Cpu(dst), Storage::Cpu(src)) => dst.clone_from(src),
        (Storage::Gpu(dst), Storage::Gpu(src)) => src.gpu().copy(src, dst, src.len() * 4),
        _ => unreachable!("inputs on one device (checked above)"),
    }
    Ok(vec![])
}
