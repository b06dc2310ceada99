//! SGD with momentum and weight decay, PyTorch's torch.optim.SGD semantics.

use super::Args;
use crate::cpu::optim::Step;
use crate::error::{shape_err, Result};
use crate::tensor::{Device, Tensor};
use crate::{cpu, gpu};

/// In place, for each of `n` tensors: param, momentum buffer (inputs
/// `2 i`, `2 i + 1`). Inputs `2 n + i`: the gradients.
/// Params: lr, momentum, weight_decay, dampening, nesterov, first_step.
/// `d = grad + wd * p; buf = first ? d : momentum * buf + (1 - dampening) * d;
///  p -= lr * (nesterov ? d + momentum * buf : buf)`. One call updates a
/// whole model.
pub fn sgd_step(a: &mut Args) -> Result<Vec<Tensor>> {
    if a.ins.is_empty() || a.muts.len() != 2 * a.ins.len() {
        return shape_err(
            a.op,
            format!(
                "{} inputs: expected (param, buffer) pairs, then one gradient per pair",
                a.muts.len() + a.ins.len()
            ),
        );
    }
    let step = Step {
        lr: a.param(0, "lr")? as f32,
        mom: a.param(1, "momentum")? as f32,
        wd: a.param(2, "weight_decay")? as f32,
        damp: a.param(3, "dampening")? as f32,
        nesterov: a.flag(4, "nesterov")?,
        first: a.flag(5, "first_step")?,
    };
    for (i, (pb, g)) in a.muts.chunks_exact(2).zip(a.ins).enumerate() {
        if pb[0].shape != g.shape || pb[1].shape != g.shape {
            return shape_err(
                a.op,
                format!(
                    "tensor {i}: param {:?}, buffer {:?}, grad {:?}",
                    pb[0].shape, pb[1].shape, g.shape
                ),
            );
        }
    }
    match a.device()? {
        Device::Cpu => cpu_step(a, step)?,
        Device::Gpu => gpu_step(a, step)?,
    }
    Ok(vec![])
}

fn cpu_step(a: &mut Args, step: Step) -> Result<()> {
    let (op, ins) = (a.op, a.ins);
    let mut tensors = Vec::with_capacity(ins.len());
    for (i, (pb, g)) in a.muts.chunks_exact_mut(2).zip(ins).enumerate() {
        let (p, b) = pb.split_at_mut(1);
        tensors.push((
            p[0].f32s_mut(op, 2 * i)?,
            b[0].f32s_mut(op, 2 * i + 1)?,
            g.f32s(op, 2 * ins.len() + i)?,
        ));
    }
    cpu::optim::sgd_step(step, tensors);
    Ok(())
}

/// Checks every buffer before the first kernel, so a refused call changes nothing.
fn gpu_step(a: &mut Args, step: Step) -> Result<()> {
    let (op, n) = (a.op, a.ins.len());
    let mut tensors = Vec::with_capacity(n);
    for (i, (pb, g)) in a.muts.chunks_exact(2).zip(a.ins).enumerate() {
        tensors.push((
            gpu::f32_data(&pb[0], op, 2 * i)?,
            gpu::f32_data(&pb[1], op, 2 * i + 1)?,
            gpu::f32_data(g, op, 2 * n + i)?,
        ));
    }
    for (p, b, g) in tensors {
        gpu::optim::sgd_step(step, p, b, g);
    }
    Ok(())
}
