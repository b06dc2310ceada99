//! BatchNorm2d in training and evaluation mode (PyTorch semantics): shape
//! checks, then the device's kernel. The fused ops run their CPU kernel on
//! the cpu and their decomposition into primitive ops ([`super::decompose`])
//! on any other device.

use super::{decompose, Args};
use crate::cpu::norm::{
    backward, backward_add_relu, channel_stats, eval_affine, invstd, scale_shift,
    scale_shift_add_relu, train_affine, update_running, BnGeom,
};
use crate::error::{shape_err, Result};
use crate::gpu;
use crate::tensor::Tensor;

/// Checks x [N, C, H, W] and that inputs `vecs` are [C].
fn geometry(a: &Args, vecs: &[usize]) -> Result<BnGeom> {
    let s = a.rank(0, 4)?.to_vec();
    for &i in vecs {
        if a.input(i).shape != [s[1]] {
            return shape_err(
                a.op,
                format!(
                    "input {i} is {:?}, expected [{}] for x {s:?}",
                    a.input(i).shape,
                    s[1]
                ),
            );
        }
    }
    Ok(geom(a))
}

/// The geometry of x (input 0), once [`geometry`] has checked it.
fn geom(a: &Args) -> BnGeom {
    let s = &a.input(0).shape;
    BnGeom {
        n: s[0],
        c: s[1],
        hw: s[2] * s[3],
    }
}

/// In place: running_mean, running_var. Inputs: x, gamma, beta, and with
/// given_stats the batch mean and biased variance (as `conv2d` with
/// with_stats returns them) instead of a pass over x to compute them.
/// Params: momentum, eps, optional given_stats. Outputs: y, batch mean,
/// batch inverse std.
pub fn batch_norm_train(a: &mut Args) -> Result<Vec<Tensor>> {
    check_train(a, false)?;
    a.dispatch(|a| train_cpu(a, false, false), gpu::norm::batch_norm_train)
}

/// [`batch_norm_train`] followed by a ReLU: `y = max(bn(x), 0)`, same
/// inputs, parameters and outputs.
pub fn batch_norm_relu_train(a: &mut Args) -> Result<Vec<Tensor>> {
    check_train(a, false)?;
    a.dispatch(
        |a| train_cpu(a, true, false),
        decompose::batch_norm_relu_train,
    )
}

/// [`batch_norm_train`] plus a residual, then a ReLU: `y = max(bn(x) + r, 0)`
/// in one pass. Inputs: x, gamma, beta, r (shaped like x), then the given
/// statistics; otherwise as [`batch_norm_train`].
pub fn batch_norm_add_relu_train(a: &mut Args) -> Result<Vec<Tensor>> {
    check_train(a, true)?;
    a.dispatch(
        |a| train_cpu(a, true, true),
        decompose::batch_norm_add_relu_train,
    )
}

/// Whether the training-mode forward's statistics are given (parameter 2).
pub(crate) fn given_stats(a: &Args) -> Result<bool> {
    Ok(a.param_or(2, "given_stats", 0.0)? != 0.0)
}

/// Checks the inputs of a training-mode forward; with `residual` the fourth
/// input is a residual shaped like x.
fn check_train(a: &Args, residual: bool) -> Result<()> {
    let given = given_stats(a)?;
    let first_stat = 3 + residual as usize;
    let expected = first_stat + if given { 2 } else { 0 };
    if a.ins.len() != expected {
        return shape_err(
            a.op,
            format!(
                "{} inputs, expected {expected} (given_stats {given})",
                a.ins.len()
            ),
        );
    }
    let stat_inputs: Vec<usize> = if given {
        vec![first_stat, first_stat + 1]
    } else {
        vec![]
    };
    let g = geometry(a, &[&[1, 2][..], &stat_inputs].concat())?;
    if residual {
        a.same_shape(0, 3)?;
    }
    running_shapes(a, &[g.c])
}

/// Fails unless both running statistics (the in-place inputs) are `want`.
fn running_shapes(a: &Args, want: &[usize]) -> Result<()> {
    match a.muts.iter().find(|m| m.shape != want) {
        Some(m) => shape_err(
            a.op,
            format!("running statistics {:?}, expected {want:?}", m.shape),
        ),
        None => Ok(()),
    }
}

/// The training-mode forward on the cpu; with `residual` (the fourth
/// input), `relu` comes after the residual sum.
fn train_cpu(a: &mut Args, relu: bool, residual: bool) -> Result<Vec<Tensor>> {
    let g = geom(a);
    let first_stat = 3 + residual as usize;
    let momentum = a.param(0, "momentum")? as f32;
    let eps = a.param(1, "eps")? as f32;
    let (x, gamma, beta) = (a.f32(0)?, a.f32(1)?, a.f32(2)?);
    let (mean, var) = if given_stats(a)? {
        (a.f32(first_stat)?.to_vec(), a.f32(first_stat + 1)?.to_vec())
    } else {
        channel_stats(g, x)
    };
    let invstd = invstd(&var, eps);
    let (scale, shift) = train_affine(gamma, beta, &mean, &invstd);
    let mut y = crate::buffers::uninit_f32(x.len());
    if residual {
        scale_shift_add_relu(g, x, a.f32(3)?, &scale, &shift, &mut y);
    } else {
        scale_shift(g, x, &scale, &shift, &mut y, relu);
    }
    update_running_cpu(a, &mean, &var, (g.n * g.hw) as f32, momentum)?;
    Ok(vec![
        Tensor::from_f32(a.input(0).shape.clone(), y),
        Tensor::from_f32(vec![g.c], mean),
        Tensor::from_f32(vec![g.c], invstd),
    ])
}

/// [`update_running`] on the two in-place inputs.
fn update_running_cpu(
    a: &mut Args,
    mean: &[f32],
    var: &[f32],
    count: f32,
    momentum: f32,
) -> Result<()> {
    let op = a.op;
    let (rm, rv) = a.muts.split_at_mut(1);
    let running = (rm[0].f32s_mut(op, 0)?, rv[0].f32s_mut(op, 1)?);
    update_running(running, mean, var, count, momentum);
    Ok(())
}

/// A training-mode batch norm (+ ReLU) that a convolution applies as its
/// prologue instead of writing it out: from the batch statistics, updates
/// the running statistics as [`batch_norm_train`] does and returns the
/// per-channel transform. In place: running_mean, running_var. Inputs:
/// gamma, beta, batch mean, batch biased variance (all [C]). Params:
/// momentum, eps, count (elements per channel in the batch). Outputs: batch
/// mean, batch inverse std, scale, shift.
pub fn batch_norm_train_affine(a: &mut Args) -> Result<Vec<Tensor>> {
    let c = a.input(0).shape.clone();
    for i in 0..4 {
        if a.input(i).shape.len() != 1 || a.input(i).shape != c {
            return shape_err(
                a.op,
                format!("input {i} is {:?}, expected {c:?}", a.input(i).shape),
            );
        }
    }
    running_shapes(a, &c)?;
    a.positive(2, "count")?;
    a.dispatch(train_affine_cpu, decompose::batch_norm_train_affine)
}

fn train_affine_cpu(a: &mut Args) -> Result<Vec<Tensor>> {
    let c = a.input(0).shape.clone();
    let momentum = a.param(0, "momentum")? as f32;
    let eps = a.param(1, "eps")? as f32;
    let count = a.positive(2, "count")? as f32;
    let (gamma, beta) = (a.f32(0)?, a.f32(1)?);
    let (mean, var) = (a.f32(2)?.to_vec(), a.f32(3)?.to_vec());
    let invstd = invstd(&var, eps);
    let (scale, shift) = train_affine(gamma, beta, &mean, &invstd);
    update_running_cpu(a, &mean, &var, count, momentum)?;
    Ok(vec![
        Tensor::from_f32(c.clone(), mean),
        Tensor::from_f32(c.clone(), invstd),
        Tensor::from_f32(c.clone(), scale),
        Tensor::from_f32(c, shift),
    ])
}

/// Inputs: x, gamma, beta, running_mean, running_var. Params: eps.
pub fn batch_norm_eval(a: &mut Args) -> Result<Vec<Tensor>> {
    geometry(a, &[1, 2, 3, 4])?;
    a.dispatch(|a| eval_cpu(a, false), gpu::norm::batch_norm_eval)
}

/// [`batch_norm_eval`] followed by a ReLU, in one pass.
pub fn batch_norm_relu_eval(a: &mut Args) -> Result<Vec<Tensor>> {
    geometry(a, &[1, 2, 3, 4])?;
    a.dispatch(|a| eval_cpu(a, true), decompose::batch_norm_relu_eval)
}

fn eval_cpu(a: &mut Args, relu: bool) -> Result<Vec<Tensor>> {
    let g = geom(a);
    let eps = a.param(0, "eps")? as f32;
    let (x, gamma, beta, rm, rv) = (a.f32(0)?, a.f32(1)?, a.f32(2)?, a.f32(3)?, a.f32(4)?);
    let (scale, shift) = eval_affine(gamma, beta, rm, rv, eps);
    let mut y = crate::buffers::uninit_f32(x.len());
    scale_shift(g, x, &scale, &shift, &mut y, relu);
    Ok(vec![Tensor::from_f32(a.input(0).shape.clone(), y)])
}

/// Inputs: x, dy, gamma, batch mean, batch inverse std.
/// Outputs: dx, dgamma, dbeta.
pub fn batch_norm_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    geometry(a, &[2, 3, 4])?;
    a.same_shape(0, 1)?;
    a.dispatch(backward_cpu, gpu::norm::batch_norm_backward)
}

fn backward_cpu(a: &mut Args) -> Result<Vec<Tensor>> {
    let (x, dy, gamma) = (a.f32(0)?, a.f32(1)?, a.f32(2)?);
    let (mean, invstd) = (a.f32(3)?, a.f32(4)?);
    let (dx, dgamma, dbeta) = backward(geom(a), x, dy, gamma, mean, invstd, None, None);
    Ok(grads(a, dx, dgamma, dbeta))
}

/// Backward of [`batch_norm_relu_train`]: the ReLU mask (recomputed from x)
/// applied to dy, then the batch norm backward, in the same two passes.
/// Inputs: x, dy, gamma, beta, batch mean, batch inverse std.
/// Outputs: dx, dgamma, dbeta.
pub fn batch_norm_relu_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    geometry(a, &[2, 3, 4, 5])?;
    a.same_shape(0, 1)?;
    a.dispatch(relu_backward_cpu, decompose::batch_norm_relu_backward)
}

fn relu_backward_cpu(a: &mut Args) -> Result<Vec<Tensor>> {
    let (x, dy, gamma, beta) = (a.f32(0)?, a.f32(1)?, a.f32(2)?, a.f32(3)?);
    let (mean, invstd) = (a.f32(4)?, a.f32(5)?);
    let (dx, dgamma, dbeta) = backward(geom(a), x, dy, gamma, mean, invstd, Some(beta), None);
    Ok(grads(a, dx, dgamma, dbeta))
}

/// Backward of [`batch_norm_add_relu_train`]: the ReLU mask from its output
/// y on dy, then the batch norm backward, in two passes.
/// Inputs: x, y, dy, gamma, batch mean, batch inverse std.
/// Outputs: dx, dgamma, dbeta, and the residual's gradient (dy masked).
pub fn batch_norm_add_relu_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    geometry(a, &[3, 4, 5])?;
    a.same_shape(0, 1)?;
    a.same_shape(0, 2)?;
    a.dispatch(
        add_relu_backward_cpu,
        decompose::batch_norm_add_relu_backward,
    )
}

fn add_relu_backward_cpu(a: &mut Args) -> Result<Vec<Tensor>> {
    let (x, y, dy, gamma) = (a.f32(0)?, a.f32(1)?, a.f32(2)?, a.f32(3)?);
    let (mean, invstd) = (a.f32(4)?, a.f32(5)?);
    let (dx, dgamma, dbeta, dr) = backward_add_relu(geom(a), x, y, dy, gamma, mean, invstd);
    let mut out = grads(a, dx, dgamma, dbeta);
    out.push(Tensor::from_f32(a.input(0).shape.clone(), dr));
    Ok(out)
}

fn grads(a: &Args, dx: Vec<f32>, dgamma: Vec<f32>, dbeta: Vec<f32>) -> Vec<Tensor> {
    let c = geom(a).c;
    vec![
        Tensor::from_f32(a.input(0).shape.clone(), dx),
        Tensor::from_f32(vec![c], dgamma),
        Tensor::from_f32(vec![c], dbeta),
    ]
}
