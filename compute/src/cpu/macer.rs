//! MACER's keep mask on host slices.

use crate::error::Result;
use crate::ops::Args;
use crate::tensor::Tensor;

/// See the `macer_keep` op; the gap is an f32 difference, the
/// comparison with gamma in f64, as the loss was first written on the host.
pub fn macer_keep(a: &mut Args) -> Result<Vec<Tensor>> {
    let (q, top, labels) = (a.f32(0)?, a.i32(1)?, a.i32(2)?);
    let gamma = a.param(0, "gamma")?;
    let keep = labels
        .iter()
        .enumerate()
        .map(|(b, &label)| {
            let gap = (q[2 * b + 1] - q[2 * b]) as f64;
            let kept = top[2 * b] == label && gap.is_finite() && gap.abs() <= gamma;
            if kept {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    Ok(vec![Tensor::from_f32(vec![labels.len(), 1], keep)])
}
