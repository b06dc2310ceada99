//! Per-class statistics of a batch of logits, so certification never moves
//! a batch of samples to the host.

use super::Args;
use crate::error::Result;
use crate::tensor::{Device, Tensor};
use crate::{cpu, gpu};

/// How many rows of logits [m, C] pick each class (first maximum on ties).
pub fn argmax_counts(a: &mut Args) -> Result<Vec<Tensor>> {
    let s = a.rank(0, 2)?.to_vec();
    Ok(vec![match a.device()? {
        Device::Cpu => Tensor::from_f32(vec![s[1]], cpu::certify::argmax_counts(a.f32(0)?, s[1])),
        Device::Gpu => {
            let z = gpu::f32_data(a.input(0), a.op, 0)?;
            Tensor::from_gpu(vec![s[1]], gpu::certify::argmax_counts(z, s[0], s[1]))
        }
    }])
}

/// Sums and sums of squares of softmax(beta * z) over the rows of z [m, C].
/// Params: beta. Output [2, C]: row 0 sums, row 1 sums of squares.
pub fn softmax_stats(a: &mut Args) -> Result<Vec<Tensor>> {
    let s = a.rank(0, 2)?.to_vec();
    let beta = a.param(0, "beta")? as f32;
    let shape = vec![2, s[1]];
    Ok(vec![match a.device()? {
        Device::Cpu => Tensor::from_f32(shape, cpu::certify::softmax_stats(a.f32(0)?, s[1], beta)),
        Device::Gpu => {
            let z = gpu::f32_data(a.input(0), a.op, 0)?;
            Tensor::from_gpu(shape, gpu::certify::softmax_stats(z, s[0], s[1], beta))
        }
    }])
}
