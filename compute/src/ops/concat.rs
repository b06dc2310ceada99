//! Concatenation along the first dimension.

use super::Args;
use crate::error::{shape_err, Error, Result};
use crate::tensor::{Device, Tensor};
use crate::{cpu, gpu};

/// Inputs: one or more tensors of the same dtype whose shapes agree past the
/// first dimension (rank >= 1). Output: them one after another along dim 0.
pub fn concat(a: &mut Args) -> Result<Vec<Tensor>> {
    let first = a.input(0);
    if first.shape.is_empty() {
        return shape_err(a.op, "input 0 is a scalar; reshape it to [1]".to_string());
    }
    let tail = &first.shape[1..];
    let mut rows = 0;
    for (i, t) in a.ins.iter().enumerate() {
        if t.shape.len() != first.shape.len() || &t.shape[1..] != tail {
            return shape_err(
                a.op,
                format!(
                    "input {i} has shape {:?}, input 0 {:?}: all but the first dimension must agree",
                    t.shape, first.shape
                ),
            );
        }
        if t.dtype() != first.dtype() {
            return Err(Error::DType {
                op: a.op,
                input: i,
                expected: first.dtype().name(),
                got: t.dtype().name(),
            });
        }
        rows += t.shape[0];
    }
    let shape: Vec<usize> = std::iter::once(rows).chain(tail.iter().copied()).collect();
    let out = match a.device()? {
        Device::Cpu => cpu::concat::concat(a.ins, shape),
        Device::Gpu => gpu::concat::concat(a.ins, shape)?,
    };
    Ok(vec![out])
}
