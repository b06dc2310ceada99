//! Elementwise ops on same-shape tensors.

use rayon::prelude::*;

use super::Args;
use crate::cpu::{simd, CHUNK};
use crate::error::{shape_err, Result};
use crate::gpu;
use crate::tensor::{Storage, Tensor};

fn map1(x: &[f32], f: impl Fn(f32) -> f32 + Sync) -> Vec<f32> {
    let mut out = crate::buffers::uninit_f32(x.len());
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(o, x)| {
            o.iter_mut().zip(x).for_each(|(o, &x)| *o = f(x));
        });
    out
}

fn map2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    let mut out = crate::buffers::uninit_f32(a.len());
    out.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(o, (a, b))| {
            o.iter_mut()
                .zip(a.iter().zip(b))
                .for_each(|(o, (&a, &b))| *o = f(a, b));
        });
    out
}

/// Runs a two-input slice kernel over fixed chunks into a new buffer.
fn zip2(a: &[f32], b: &[f32], k: fn(&mut [f32], &[f32], &[f32])) -> Vec<f32> {
    let mut out = crate::buffers::uninit_f32(a.len());
    out.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(o, (a, b))| k(o, a, b));
    out
}

fn binary_kernel(a: &Args, k: fn(&mut [f32], &[f32], &[f32])) -> Result<Vec<Tensor>> {
    a.same_shape(0, 1)?;
    Ok(vec![Tensor::from_f32(
        a.input(0).shape.clone(),
        zip2(a.f32(0)?, a.f32(1)?, k),
    )])
}

fn unary(a: &Args, f: impl Fn(f32) -> f32 + Sync) -> Result<Vec<Tensor>> {
    Ok(vec![Tensor::from_f32(
        a.input(0).shape.clone(),
        map1(a.f32(0)?, f),
    )])
}

fn binary(a: &Args, f: impl Fn(f32, f32) -> f32 + Sync) -> Result<Vec<Tensor>> {
    a.same_shape(0, 1)?;
    Ok(vec![Tensor::from_f32(
        a.input(0).shape.clone(),
        map2(a.f32(0)?, a.f32(1)?, f),
    )])
}

pub fn add(a: &mut Args) -> Result<Vec<Tensor>> {
    a.same_shape(0, 1)?;
    a.dispatch(|a| binary_kernel(a, simd::add), gpu::elementwise::add)
}

pub fn sub(a: &mut Args) -> Result<Vec<Tensor>> {
    a.same_shape(0, 1)?;
    a.dispatch(|a| binary_kernel(a, simd::sub), gpu::elementwise::sub)
}

pub fn mul(a: &mut Args) -> Result<Vec<Tensor>> {
    a.same_shape(0, 1)?;
    a.dispatch(|a| binary_kernel(a, simd::mul), gpu::elementwise::mul)
}

/// `scale * x + shift`. Params: scale, shift.
pub fn affine(a: &mut Args) -> Result<Vec<Tensor>> {
    let (s, t) = (
        a.param(0, "scale")? as f32,
        a.param_or(1, "shift", 0.0)? as f32,
    );
    unary(a, move |x| s * x + t)
}

pub fn relu(a: &mut Args) -> Result<Vec<Tensor>> {
    let x = a.f32(0)?;
    let mut out = crate::buffers::uninit_f32(x.len());
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(o, x)| simd::relu(o, x));
    Ok(vec![Tensor::from_f32(a.input(0).shape.clone(), out)])
}

/// `max(a + b, 0)` in one pass (a residual sum and its ReLU). Its backward
/// is `relu_backward` of its output, the same gradient for both inputs.
pub fn add_relu(a: &mut Args) -> Result<Vec<Tensor>> {
    binary_kernel(a, simd::add_relu)
}

/// Inputs: relu output y, upstream gradient dy.
pub fn relu_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    binary_kernel(a, simd::relu_backward)
}

pub fn log(a: &mut Args) -> Result<Vec<Tensor>> {
    unary(a, f32::ln)
}

/// Inputs: x, dy.
pub fn log_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    binary(a, |x, d| d / x)
}

/// The standard normal quantile, computed in f64.
pub fn ndtri(a: &mut Args) -> Result<Vec<Tensor>> {
    unary(a, |p| crate::cpu_math::ndtri(p as f64) as f32)
}

/// Inputs: y = ndtri(p), dy. d ndtri / dp = sqrt(2 pi) exp(y^2 / 2).
pub fn ndtri_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    binary(a, |y, d| {
        let y = y as f64;
        (d as f64 * (2.0 * std::f64::consts::PI).sqrt() * (0.5 * y * y).exp()) as f32
    })
}

/// Params: the new dims; one of them may be -1 (inferred).
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

/// Params: value, dims...
pub fn full(a: &mut Args) -> Result<Vec<Tensor>> {
    let v = a.param(0, "value")? as f32;
    let dims = (1..a.params.len())
        .map(|i| a.usize(i, "dim"))
        .collect::<Result<Vec<_>>>()?;
    let n = dims.iter().product();
    let mut out = crate::buffers::uninit_f32(n);
    crate::buffers::fill_par(&mut out, v);
    Ok(vec![Tensor::from_f32(dims, out)])
}

/// In place: `dst = src` (same shape and dtype), so handles stay valid.
pub fn copy_inplace(a: &mut Args) -> Result<Vec<Tensor>> {
    let src = a.ins[0];
    if a.muts[0].shape != src.shape || a.muts[0].dtype() != src.dtype() {
        return shape_err(a.op, format!("{:?} = {:?}", a.muts[0].shape, src.shape));
    }
    match (&mut a.muts[0].storage, &src.storage) {
        (Storage::Cpu(dst), Storage::Cpu(src)) => dst.clone_from(src),
        (Storage::Gpu(dst), Storage::Gpu(src)) => src.gpu().copy(src, dst, src.len() * 4),
        _ => unreachable!("inputs on one device (checked by the op table)"),
    }
    Ok(vec![])
}
