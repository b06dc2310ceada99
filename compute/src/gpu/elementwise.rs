//! Elementwise kernels on the GPU.

use super::{grid, Kernel};
use crate::error::Result;
use crate::ops::Args;
use crate::tensor::{DType, Tensor};

const BINARY: &str = include_str!("shaders/binary.wgsl");

fn binary(a: &Args, entry: &'static str, name: &'static str) -> Result<Vec<Tensor>> {
    let (x, y) = (a.ins[0].gpu(a.op, 0)?, a.ins[1].gpu(a.op, 1)?);
    let gpu = x.gpu();
    let n = x.len();
    let out = gpu.alloc(DType::F32, n);
    let kernel = Kernel {
        name,
        source: BINARY,
        entry,
    };
    gpu.dispatch(&kernel, &[x, y, &out], &[n as u32], grid(n));
    Ok(vec![Tensor::from_gpu(a.ins[0].shape.clone(), out)])
}

pub fn add(a: &mut Args) -> Result<Vec<Tensor>> {
    binary(a, "add", "binary.add")
}

pub fn sub(a: &mut Args) -> Result<Vec<Tensor>> {
    binary(a, "sub", "binary.sub")
}

pub fn mul(a: &mut Args) -> Result<Vec<Tensor>> {
    binary(a, "mul", "binary.mul")
}
