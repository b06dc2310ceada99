//! SGD with momentum and weight decay, PyTorch's torch.optim.SGD semantics.

use rayon::prelude::*;

use super::Args;
use crate::cpu::CHUNK;
use crate::error::{shape_err, Result};
use crate::tensor::Tensor;

/// In place, for each of `n` tensors: param, momentum buffer (inputs
/// `2 i`, `2 i + 1`). Inputs `2 n + i`: the gradients.
/// Params: lr, momentum, weight_decay, dampening, nesterov, first_step.
/// `d = grad + wd * p; buf = first ? d : momentum * buf + (1 - dampening) * d;
///  p -= lr * (nesterov ? d + momentum * buf : buf)`. One call updates a
/// whole model: the tensors are shared out among the threads.
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
    let (op, ins) = (a.op, a.ins);
    for (i, (pb, g)) in a.muts.chunks_exact(2).zip(ins).enumerate() {
        if pb[0].shape != g.shape || pb[1].shape != g.shape {
            return shape_err(
                op,
                format!(
                    "tensor {i}: param {:?}, buffer {:?}, grad {:?}",
                    pb[0].shape, pb[1].shape, g.shape
                ),
            );
        }
    }
    let mut work = Vec::with_capacity(ins.len());
    for (i, (pb, g)) in a.muts.chunks_exact_mut(2).zip(ins).enumerate() {
        let (p, b) = pb.split_at_mut(1);
        let p = p[0].f32s_mut(op, 2 * i)?;
        let b = b[0].f32s_mut(op, 2 * i + 1)?;
        for ((p, b), g) in p
            .chunks_mut(CHUNK)
            .zip(b.chunks_mut(CHUNK))
            .zip(g.f32s(op, 2 * ins.len() + i)?.chunks(CHUNK))
        {
            work.push((p, b, g));
        }
    }
    work.into_par_iter().for_each(|(p, b, g)| step.run(p, b, g));
    Ok(vec![])
}

#[derive(Clone, Copy)]
struct Step {
    lr: f32,
    mom: f32,
    wd: f32,
    damp: f32,
    nesterov: bool,
    first: bool,
}

impl Step {
    fn run(&self, p: &mut [f32], b: &mut [f32], g: &[f32]) {
        let Step {
            lr,
            mom,
            wd,
            damp,
            nesterov,
            first,
        } = *self;
        for ((p, b), &g) in p.iter_mut().zip(b.iter_mut()).zip(g) {
            let d = g + wd * *p;
            if mom != 0.0 {
                *b = if first {
                    d
                } else {
                    mom * *b + (1.0 - damp) * d
                };
                *p -= lr * if nesterov { d + mom * *b } else { *b };
            } else {
                *p -= lr * d;
            }
        }
    }
}
