//! SGD with momentum and weight decay, PyTorch's torch.optim.SGD semantics.

use rayon::prelude::*;

use super::Args;
use crate::cpu::CHUNK;
use crate::error::{shape_err, Result};
use crate::tensor::Tensor;

/// In place: param, momentum buffer. Input: grad.
/// Params: lr, momentum, weight_decay, dampening, nesterov, first_step.
/// `d = grad + wd * p; buf = first ? d : momentum * buf + (1 - dampening) * d;
///  p -= lr * (nesterov ? d + momentum * buf : buf)`.
pub fn sgd_step(a: &mut Args) -> Result<Vec<Tensor>> {
    let shape = &a.input(0).shape;
    if a.muts[0].shape != *shape || a.muts[1].shape != *shape {
        return shape_err(
            a.op,
            format!(
                "param {:?}, buffer {:?}, grad {shape:?}",
                a.muts[0].shape, a.muts[1].shape
            ),
        );
    }
    let lr = a.param(0, "lr")? as f32;
    let mom = a.param(1, "momentum")? as f32;
    let wd = a.param(2, "weight_decay")? as f32;
    let damp = a.param(3, "dampening")? as f32;
    let nesterov = a.flag(4, "nesterov")?;
    let first = a.flag(5, "first_step")?;
    let op = a.op;
    let ins = a.ins;
    let grad = ins[0].f32s(op, 0)?;
    let (p, b) = a.muts.split_at_mut(1);
    let p = p[0].f32s_mut(op, 0)?;
    let b = b[0].f32s_mut(op, 1)?;
    p.par_chunks_mut(CHUNK)
        .zip(b.par_chunks_mut(CHUNK))
        .zip(grad.par_chunks(CHUNK))
        .for_each(|((p, b), g)| {
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
        });
    Ok(vec![])
}
