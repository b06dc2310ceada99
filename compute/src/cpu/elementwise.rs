//! Elementwise kernels on host slices, in fixed chunks (see [`CHUNK`]).
//!
//! The ops in `ops::elementwise` validate shapes, dtypes and parameters
//! before calling these, so parameters are read without further checks.

use rayon::prelude::*;

use super::{simd, CHUNK};
use crate::error::Result;
use crate::ops::Args;
use crate::tensor::Tensor;

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
    Ok(vec![Tensor::from_f32(
        a.input(0).shape.clone(),
        map2(a.f32(0)?, a.f32(1)?, f),
    )])
}

pub fn add(a: &mut Args) -> Result<Vec<Tensor>> {
    binary_kernel(a, simd::add)
}

pub fn sub(a: &mut Args) -> Result<Vec<Tensor>> {
    binary_kernel(a, simd::sub)
}

pub fn mul(a: &mut Args) -> Result<Vec<Tensor>> {
    binary_kernel(a, simd::mul)
}

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

pub fn add_relu(a: &mut Args) -> Result<Vec<Tensor>> {
    binary_kernel(a, simd::add_relu)
}

pub fn relu_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    binary_kernel(a, simd::relu_backward)
}

pub fn log(a: &mut Args) -> Result<Vec<Tensor>> {
    unary(a, f32::ln)
}

pub fn sqrt(a: &mut Args) -> Result<Vec<Tensor>> {
    unary(a, f32::sqrt)
}

pub fn recip(a: &mut Args) -> Result<Vec<Tensor>> {
    unary(a, f32::recip)
}

pub fn log_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    binary(a, |x, d| d / x)
}

/// Computed in f64.
pub fn ndtri(a: &mut Args) -> Result<Vec<Tensor>> {
    unary(a, |p| crate::cpu_math::ndtri(p as f64) as f32)
}

/// Computed in f64.
pub fn ndtri_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    binary(a, |y, d| {
        let y = y as f64;
        (d as f64 * (2.0 * std::f64::consts::PI).sqrt() * (0.5 * y * y).exp()) as f32
    })
}

/// `dims` filled with `v`.
pub fn full(dims: Vec<usize>, v: f32) -> Tensor {
    let mut out = crate::buffers::uninit_f32(dims.iter().product());
    crate::buffers::fill_par(&mut out, v);
    Tensor::from_f32(dims, out)
}
