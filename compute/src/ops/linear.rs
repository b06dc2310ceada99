//! Fully connected layer `y = x W^T + b` (PyTorch's nn.Linear layout).

use super::Args;
use crate::error::{shape_err, Result};
use crate::tensor::{DType, Device, Tensor};
use crate::{cpu, gpu};

/// `(n, in, out)` from x [n, in] and w [out, in].
fn dims(a: &Args) -> Result<(usize, usize, usize)> {
    let xs = a.rank(0, 2)?.to_vec();
    let ws = a.rank(1, 2)?.to_vec();
    if xs[1] != ws[1] {
        return shape_err(
            a.op,
            format!(
                "x {xs:?} has {} features, weight {ws:?} takes {}",
                xs[1], ws[1]
            ),
        );
    }
    Ok((xs[0], xs[1], ws[0]))
}

/// Inputs: x [n, in], w [out, in], optional b [out].
pub fn linear(a: &mut Args) -> Result<Vec<Tensor>> {
    let d @ (_, _, fout) = dims(a)?;
    a.dtypes(&[DType::F32; 3])?;
    if a.ins.len() == 3 && a.input(2).shape != [fout] {
        return shape_err(
            a.op,
            format!("bias {:?} for {fout} outputs", a.input(2).shape),
        );
    }
    match a.device()? {
        Device::Cpu => cpu::linear::linear(a, d),
        Device::Gpu => gpu::linear::linear(a, d),
    }
}

/// Inputs: x, w, dy [n, out]. Outputs: dx [n, in], dw [out, in], db [out].
pub fn linear_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    let d @ (n, _, fout) = dims(a)?;
    a.dtypes(&[DType::F32; 3])?;
    if a.input(2).shape != [n, fout] {
        return shape_err(
            a.op,
            format!("dy {:?}, expected {:?}", a.input(2).shape, [n, fout]),
        );
    }
    match a.device()? {
        Device::Cpu => cpu::linear::linear_backward(a, d),
        Device::Gpu => gpu::linear::linear_backward(a, d),
    }
}
