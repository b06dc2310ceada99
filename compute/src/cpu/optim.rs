//! SGD with momentum and weight decay on the host.

use rayon::prelude::*;

use super::CHUNK;

/// One step's hyperparameters (torch.optim.SGD semantics).
#[derive(Clone, Copy)]
pub struct Step {
    pub lr: f32,
    pub mom: f32,
    pub wd: f32,
    pub damp: f32,
    pub nesterov: bool,
    pub first: bool,
}

/// Updates every (param, momentum buffer, grad) triple in place; the
/// tensors are cut into fixed chunks shared out among the threads.
pub fn sgd_step(step: Step, tensors: Vec<(&mut [f32], &mut [f32], &[f32])>) {
    let mut work = Vec::new();
    for (p, b, g) in tensors {
        for ((p, b), g) in p
            .chunks_mut(CHUNK)
            .zip(b.chunks_mut(CHUNK))
            .zip(g.chunks(CHUNK))
        {
            work.push((p, b, g));
        }
    }
    work.into_par_iter().for_each(|(p, b, g)| step.run(p, b, g));
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
