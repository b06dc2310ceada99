//! MACER's choice of the images that enter the robustness loss, made on the
//! device so a training step never waits for it on the host.

use super::Args;
use crate::error::{shape_err, Result};
use crate::tensor::{DType, Tensor};
use crate::{cpu, gpu};

/// Inputs: q [n, 2] (Phi^-1 of each image's two largest smoothed
/// probabilities, largest first), top i32 [n, 2] (their classes), labels i32
/// [n, 1]. Params: gamma. Output: keep [n, 1], 1 where the top class is the
/// label and the gap `q[:, 1] - q[:, 0]` is finite with |gap| <= gamma, else 0.
pub fn macer_keep(a: &mut Args) -> Result<Vec<Tensor>> {
    let n = a.rank(0, 2)?[0];
    for (i, want) in [(0, [n, 2]), (1, [n, 2]), (2, [n, 1])] {
        if a.input(i).shape != want {
            return shape_err(
                a.op,
                format!(
                    "input {i} has shape {:?}, expected {want:?}",
                    a.input(i).shape
                ),
            );
        }
    }
    a.dtypes(&[DType::F32, DType::I32, DType::I32])?;
    a.param(0, "gamma")?;
    a.dispatch(cpu::macer::macer_keep, gpu::macer::macer_keep)
}
