//! conv2d forward and backward (PyTorch's nn.Conv2d layout, square stride and padding).

use std::borrow::Cow;

use super::{decompose, Args};
use crate::cpu::conv::{conv2d_backward_bn, conv2d_backward_deferred, conv2d_forward_ep, Dy};
use crate::cpu::norm::{
    add_relu_sums, dx_coefficients, eval_affine, grads_from_sums, AddReluSums, BnBackward, BnGeom,
    DeferredDx,
};
use crate::error::{param_err, shape_err, Result};
use crate::geometry::{ConvGeom, ConvInputs, Epilogue, Prologue};
use crate::tensor::{DType, Device, Tensor};
use crate::{cpu, gpu};

/// Reads x [N, C, H, W], w [O, C, kh, kw] and params (stride, pad).
fn geometry(a: &Args) -> Result<ConvGeom> {
    geometry_at(a, (0, 1), 0)
}

/// [`geometry`] of inputs `(x, w)` and params `p, p + 1` (stride, pad).
fn geometry_at(a: &Args, (xi, wi): (usize, usize), p: usize) -> Result<ConvGeom> {
    let xs = a.rank(xi, 4)?.to_vec();
    let ws = a.rank(wi, 4)?.to_vec();
    let stride = a.positive(p, "stride")?;
    let pad = a.usize(p + 1, "padding")?;
    if xs[1] != ws[1] {
        return shape_err(
            a.op,
            format!(
                "input {xs:?} has {} channels, weight {ws:?} expects {}",
                xs[1], ws[1]
            ),
        );
    }
    let (hp, wp) = (xs[2] + 2 * pad, xs[3] + 2 * pad);
    if hp < ws[2] || wp < ws[3] {
        return param_err(
            a.op,
            format!(
                "kernel {}x{} larger than padded input {hp}x{wp}",
                ws[2], ws[3]
            ),
        );
    }
    Ok(ConvGeom {
        n: xs[0],
        c: xs[1],
        h: xs[2],
        w: xs[3],
        o: ws[0],
        kh: ws[2],
        kw: ws[3],
        stride,
        pad,
        ho: (hp - ws[2]) / stride + 1,
        wo: (wp - ws[3]) / stride + 1,
    })
}

/// Fails unless input 2 (dy) has the convolution's output shape.
fn check_dy(a: &Args, g: &ConvGeom) -> Result<()> {
    let want = [g.n, g.o, g.ho, g.wo];
    if a.input(2).shape != want {
        return shape_err(
            a.op,
            format!("dy {:?}, expected {want:?}", a.input(2).shape),
        );
    }
    Ok(())
}

/// Checks [`conv2d`]'s optional inputs: a bias [O], then with the prologue
/// flag (parameter 3) the prologue's scale and shift, one per input channel.
fn conv2d_inputs(a: &Args, g: &ConvGeom) -> Result<ConvInputs> {
    let with_stats = a.param_or(2, "with_stats", 0.0)? != 0.0;
    let n = a.ins.len();
    let prologue = if a.param_or(3, "prologue", 0.0)? != 0.0 {
        for i in [n - 2, n - 1] {
            if n < 4 || a.input(i).shape != [g.c] {
                return shape_err(
                    a.op,
                    format!(
                        "prologue input {i}: expected [{}] (scale, shift per input channel)",
                        g.c
                    ),
                );
            }
        }
        if !with_stats {
            return param_err(a.op, "a prologue needs with_stats".to_string());
        }
        Some(n - 2)
    } else {
        None
    };
    let bias = (prologue.unwrap_or(n) == 3).then_some(2);
    if bias.is_some() && a.input(2).shape != [g.o] {
        return shape_err(
            a.op,
            format!("bias {:?} for {} output channels", a.input(2).shape, g.o),
        );
    }
    Ok(ConvInputs {
        bias,
        prologue,
        with_stats,
    })
}

/// Inputs: x, w, optional bias [O], then with the prologue flag its scale
/// and shift [C] (the convolution is of `max(x * scale + shift, 0)`, never
/// written out). Params: stride, padding, optional with_stats, optional
/// prologue. Outputs: y, and with_stats the batch mean and biased variance
/// of each output channel (for a following training-mode batch norm).
pub fn conv2d(a: &mut Args) -> Result<Vec<Tensor>> {
    let g = geometry(a)?;
    let io = conv2d_inputs(a, &g)?;
    a.dtypes(&[DType::F32; 5])?;
    match a.device()? {
        Device::Cpu => cpu::conv::conv2d_op(a, &g, io),
        Device::Gpu => gpu::conv::conv2d(a, &g, io),
    }
}

/// A convolution followed by evaluation-mode batch norm, folded into it:
/// with `s = gamma / sqrt(running_var + eps)`, the weights `w * s[o]` and the
/// bias `beta - running_mean * s`, then optionally a residual added and a
/// ReLU, all applied as the convolution writes its output.
/// Inputs: x, w, gamma, beta, running_mean, running_var, optional residual
/// (shaped like the output). Params: stride, padding, eps, relu.
pub fn conv2d_bn_eval(a: &mut Args) -> Result<Vec<Tensor>> {
    let g = check_bn_eval(a)?;
    match a.device()? {
        Device::Cpu => conv2d_bn_eval_cpu(a, &g),
        _ => decompose::conv2d_bn_eval(a),
    }
}

/// Checks [`conv2d_bn_eval`]'s inputs; returns its geometry.
fn check_bn_eval(a: &Args) -> Result<ConvGeom> {
    let g = geometry(a)?;
    a.param(2, "eps")?;
    a.flag(3, "relu")?;
    for i in 2..6 {
        if a.input(i).shape != [g.o] {
            return shape_err(
                a.op,
                format!(
                    "input {i} is {:?} for {} output channels",
                    a.input(i).shape,
                    g.o
                ),
            );
        }
    }
    let out_shape = [g.n, g.o, g.ho, g.wo];
    if a.ins.len() == 7 && a.input(6).shape != out_shape {
        return shape_err(
            a.op,
            format!("residual {:?}, expected {out_shape:?}", a.input(6).shape),
        );
    }
    Ok(g)
}

fn conv2d_bn_eval_cpu(a: &mut Args, g: &ConvGeom) -> Result<Vec<Tensor>> {
    let eps = a.param(2, "eps")? as f32;
    let relu = a.flag(3, "relu")?;
    let out_shape = vec![g.n, g.o, g.ho, g.wo];
    let residual = if a.ins.len() == 7 {
        Some(a.f32(6)?)
    } else {
        None
    };
    let (w, gamma, beta, rm, rv) = (a.f32(1)?, a.f32(2)?, a.f32(3)?, a.f32(4)?, a.f32(5)?);
    let (wf, bias) = fold_bn(w, gamma, beta, rm, rv, eps);
    let mut y = crate::buffers::uninit_f32(g.n * g.o * g.p());
    let ep = Epilogue {
        bias: Some(&bias),
        residual,
        relu,
    };
    conv2d_forward_ep(g, a.f32(0)?, &wf, ep, &mut y);
    crate::buffers::recycle_f32(wf);
    Ok(vec![Tensor::from_f32(out_shape, y)])
}

/// Evaluation-mode batch norm folded into the weights `w [O, K]`: returns
/// `(w * s[o], beta - running_mean * s)` with `s = gamma / sqrt(var + eps)`,
/// the scale computed as `batch_norm_eval` computes it.
fn fold_bn(
    w: &[f32],
    gamma: &[f32],
    beta: &[f32],
    rm: &[f32],
    rv: &[f32],
    eps: f32,
) -> (Vec<f32>, Vec<f32>) {
    let o = gamma.len();
    let (scale, bias) = eval_affine(gamma, beta, rm, rv, eps);
    let mut wf = crate::buffers::uninit_f32(w.len());
    let k = (w.len() / o.max(1)).max(1);
    for ((dst, src), s) in wf.chunks_mut(k).zip(w.chunks(k)).zip(&scale) {
        dst.iter_mut().zip(src).for_each(|(d, v)| *d = v * s);
    }
    (wf, bias)
}

/// Inputs: x, w, dy, optional dx_acc (a gradient already collected for x,
/// returned added to dx). Params: stride, padding, with_bias, need_dx.
/// Outputs: [dx if need_dx], dw, [db if with_bias].
pub fn conv2d_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    let g = geometry(a)?;
    let with_bias = a.flag(2, "with_bias")?;
    let need_dx = a.flag(3, "need_dx")?;
    check_dy(a, &g)?;
    a.dtypes(&[DType::F32; 4])?;
    if a.ins.len() == 4 && (!need_dx || a.input(3).shape != a.input(0).shape) {
        return shape_err(
            a.op,
            format!(
                "dx_acc {:?} needs need_dx and the shape of x {:?}",
                a.input(3).shape,
                a.input(0).shape
            ),
        );
    }
    match a.device()? {
        Device::Cpu => cpu::conv::conv2d_backward_op(a, &g, with_bias, need_dx),
        Device::Gpu => gpu::conv::conv2d_backward(a, &g, with_bias, need_dx),
    }
}

/// Backward of `conv2d(relu(batch_norm(z)), w)` in training mode, where the
/// batch norm + ReLU was the convolution's prologue (see [`conv2d`]):
/// the convolution's gradients, then the batch norm + ReLU backward, whose
/// sums come from the data gradient as it is written. Inputs: z, w, dy,
/// gamma, beta, batch mean, batch inverse std, scale, shift (the last six
/// [C], as `batch_norm_train_affine` returns them). Params: stride, padding.
/// Outputs: dz, dw, dgamma, dbeta.
pub fn bn_relu_conv2d_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    let g = geometry(a)?;
    check_dy(a, &g)?;
    for i in 3..9 {
        if a.input(i).shape != [g.c] {
            return shape_err(
                a.op,
                format!("input {i} is {:?}, expected [{}]", a.input(i).shape, g.c),
            );
        }
    }
    match a.device()? {
        Device::Cpu => bn_relu_conv2d_backward_cpu(a, &g),
        _ => decompose::bn_relu_conv2d_backward(a),
    }
}

fn bn_relu_conv2d_backward_cpu(a: &mut Args, g: &ConvGeom) -> Result<Vec<Tensor>> {
    let (z, w, dy) = (a.f32(0)?, a.f32(1)?, a.f32(2)?);
    let (gamma, beta, mean, invstd) = (a.f32(3)?, a.f32(4)?, a.f32(5)?, a.f32(6)?);
    let pro = Prologue {
        scale: a.f32(7)?,
        shift: a.f32(8)?,
    };
    let bn = BnBackward {
        mean,
        scale: pro.scale,
        shift: pro.shift,
    };
    let mut dh = crate::buffers::uninit_f32(z.len());
    let (dw, sums) = conv2d_backward_bn(g, (z, pro), w, Dy::Given(dy), &mut dh, bn);
    let geom = BnGeom {
        n: g.n,
        c: g.c,
        hw: g.h * g.w,
    };
    let (dz, dgamma, dbeta) =
        crate::cpu::norm::backward(geom, z, &dh, gamma, mean, invstd, Some(beta), Some(&sums));
    crate::buffers::recycle_f32(dh);
    Ok(vec![
        Tensor::from_f32(a.input(0).shape.clone(), dz),
        Tensor::from_f32(a.input(1).shape.clone(), dw),
        Tensor::from_f32(vec![g.c], dgamma),
        Tensor::from_f32(vec![g.c], dbeta),
    ])
}

/// Backward of a residual block with an identity shortcut in training mode,
/// `out = relu(bn2(conv2(relu(bn1(conv1(x))))) + x)`, bn1 + ReLU having
/// been conv2's prologue: bn2's backward, conv2's, bn1's and conv1's in one
/// op, where each batch norm's second pass runs image group by image group
/// as the convolution backward after it reads it, so neither batch norm's
/// input gradient is ever written out whole.
///
/// Inputs: x, w1, z1 (conv1's output), w2, z2 (conv2's), gamma1, batch
/// mean1, invstd1, scale1, shift1 (as `batch_norm_train_affine` returns
/// them; the ReLU mask is `z1 * scale1 + shift1 > 0`), gamma2, batch mean2,
/// invstd2; then the output's gradient: `out, dout`, or with param
/// `chained_in` what the next block's op returned for it, `dr, dgamma2,
/// dbeta2` (bn2's first pass already done); then optionally a gradient
/// already collected for x, or with param `chained_out` the previous
/// block's `z2, mean2, invstd2`. Params: conv1's stride and padding,
/// conv2's, chained_in, chained_out. Outputs: dx, or with `chained_out` the
/// previous block's `dr, dgamma2, dbeta2` (its output's gradient masked by
/// x > 0 and its bn2 sums, taken as dx is written); then dw1, dgamma1,
/// dbeta1, dw2, dgamma2, dbeta2.
pub fn residual_block_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    let checked = check_residual(a)?;
    match a.device()? {
        Device::Cpu => residual_block_backward_cpu(a, checked),
        _ => decompose::residual_block_backward(a),
    }
}

/// [`residual_block_backward`]'s geometry: both convolutions', and where
/// the inputs after the output's gradient start.
struct Residual {
    g1: ConvGeom,
    g2: ConvGeom,
    out_at: usize,
    chained_in: bool,
    chained_out: bool,
}

/// Checks [`residual_block_backward`]'s inputs.
fn check_residual(a: &Args) -> Result<Residual> {
    let g1 = geometry_at(a, (0, 1), 0)?;
    let g2 = geometry_at(a, (2, 3), 2)?;
    let chained_in = a.param_or(4, "chained_in", 0.0)? != 0.0;
    let chained_out = a.param_or(5, "chained_out", 0.0)? != 0.0;
    let (c1, c2) = (vec![g1.o], vec![g2.o]);
    let x_shape = a.input(0).shape.clone();
    let out_shape = vec![g2.n, g2.o, g2.ho, g2.wo];
    let mut expect: Vec<(usize, Vec<usize>)> = vec![(2, vec![g1.n, g1.o, g1.ho, g1.wo])];
    expect.push((4, out_shape.clone()));
    expect.extend((5..10).map(|i| (i, c1.clone())));
    expect.extend((10..13).map(|i| (i, c2.clone())));
    let incoming = if chained_in {
        vec![out_shape.clone(), c2.clone(), c2.clone()]
    } else {
        vec![out_shape.clone(), out_shape.clone()]
    };
    let out_at = 13 + incoming.len();
    expect.extend(incoming.into_iter().enumerate().map(|(i, s)| (13 + i, s)));
    let c0 = vec![x_shape[1]];
    let outgoing = match (chained_out, a.ins.len() > out_at) {
        (true, _) => vec![x_shape.clone(), c0.clone(), c0.clone()],
        (false, true) => vec![x_shape.clone()],
        (false, false) => vec![],
    };
    if a.ins.len() != out_at + outgoing.len() {
        return shape_err(
            a.op,
            format!(
                "{} inputs, expected {}",
                a.ins.len(),
                out_at + outgoing.len()
            ),
        );
    }
    expect.extend(
        outgoing
            .into_iter()
            .enumerate()
            .map(|(i, s)| (out_at + i, s)),
    );
    for (i, want) in expect {
        if a.input(i).shape != want {
            return shape_err(
                a.op,
                format!("input {i} is {:?}, expected {want:?}", a.input(i).shape),
            );
        }
    }
    if out_shape != x_shape {
        return shape_err(
            a.op,
            format!(
                "block output {out_shape:?} differs from its input {x_shape:?} (identity shortcut)"
            ),
        );
    }
    Ok(Residual {
        g1,
        g2,
        out_at,
        chained_in,
        chained_out,
    })
}

fn residual_block_backward_cpu(a: &mut Args, r: Residual) -> Result<Vec<Tensor>> {
    let Residual {
        g1,
        g2,
        out_at,
        chained_in,
        chained_out,
    } = r;
    let (c1, c2) = (vec![g1.o], vec![g2.o]);
    let x_shape = a.input(0).shape.clone();
    let c0 = vec![x_shape[1]];
    let (x, w1, z1, w2, z2) = (a.f32(0)?, a.f32(1)?, a.f32(2)?, a.f32(3)?, a.f32(4)?);
    let (gamma1, mean1, invstd1) = (a.f32(5)?, a.f32(6)?, a.f32(7)?);
    let (scale1, shift1) = (a.f32(8)?, a.f32(9)?);
    let (gamma2, mean2, invstd2) = (a.f32(10)?, a.f32(11)?, a.f32(12)?);
    let bn2 = BnGeom {
        n: g2.n,
        c: g2.o,
        hw: g2.p(),
    };
    // bn2's first pass: the output's gradient masked by the ReLU (also the
    // shortcut's gradient), and bn2's sums.
    let (dr, dgamma2, dbeta2, coef2): (Cow<[f32]>, _, _, _) = if chained_in {
        let (dgamma2, dbeta2) = (a.f32(14)?.to_vec(), a.f32(15)?.to_vec());
        let coef = dx_coefficients(bn2, gamma2, mean2, invstd2, (&dbeta2, &dgamma2));
        (Cow::Borrowed(a.f32(13)?), dgamma2, dbeta2, coef)
    } else {
        let (out, dout) = (a.f32(13)?, a.f32(14)?);
        let (dr, dgamma2, dbeta2, coef) = add_relu_sums(bn2, z2, out, dout, gamma2, mean2, invstd2);
        (Cow::Owned(dr), dgamma2, dbeta2, coef)
    };
    let dz2 = DeferredDx {
        g: bn2,
        x: z2,
        dy: &dr,
        coef: &coef2,
        mask: None,
    };
    let pro1 = Prologue {
        scale: scale1,
        shift: shift1,
    };
    let mask1 = BnBackward {
        mean: mean1,
        scale: scale1,
        shift: shift1,
    };
    let mut dh = crate::buffers::uninit_f32(z1.len());
    let (dw2, sums1) = conv2d_backward_bn(&g2, (z1, pro1), w2, Dy::Deferred(dz2), &mut dh, mask1);
    let bn1 = BnGeom {
        n: g1.n,
        c: g1.o,
        hw: g1.p(),
    };
    let (dgamma1, dbeta1, coef1) = grads_from_sums(bn1, gamma1, mean1, invstd1, &sums1);
    let dz1 = DeferredDx {
        g: bn1,
        x: z1,
        dy: &dh,
        coef: &coef1,
        mask: Some((scale1, shift1)),
    };
    // The shortcut's gradient (plus any other collected for x), added to
    // dx as conv1's data gradient is written.
    let mut acc = dr;
    if !chained_out && a.ins.len() > out_at {
        let pending = a.f32(out_at)?;
        acc.to_mut()
            .iter_mut()
            .zip(pending)
            .for_each(|(d, p)| *d += p);
    }
    let then = if chained_out {
        let g0 = BnGeom {
            n: g1.n,
            c: g1.c,
            hw: g1.h * g1.w,
        };
        Some(AddReluSums {
            g: g0,
            y: x,
            z: a.f32(out_at)?,
            mean: a.f32(out_at + 1)?,
        })
    } else {
        None
    };
    let mut dx = crate::buffers::uninit_f32(x.len());
    let (dw1, sums0) = conv2d_backward_deferred(&g1, x, w1, dz1, (&mut dx, Some(&acc)), then);
    if let Cow::Owned(acc) = acc {
        crate::buffers::recycle_f32(acc);
    }
    crate::buffers::recycle_f32(dh);
    let mut outs = vec![Tensor::from_f32(x_shape, dx)];
    if let Some(sums0) = sums0 {
        let (dbeta0, dgamma0) = sums0
            .iter()
            .zip(a.f32(out_at + 2)?)
            .map(|(&[s, q], &is)| (s as f32, (q * is as f64) as f32))
            .unzip();
        outs.push(Tensor::from_f32(c0.clone(), dgamma0));
        outs.push(Tensor::from_f32(c0, dbeta0));
    }
    outs.extend([
        Tensor::from_f32(a.input(1).shape.clone(), dw1),
        Tensor::from_f32(c1.clone(), dgamma1),
        Tensor::from_f32(c1, dbeta1),
        Tensor::from_f32(a.input(3).shape.clone(), dw2),
        Tensor::from_f32(c2.clone(), dgamma2),
        Tensor::from_f32(c2, dbeta2),
    ]);
    Ok(outs)
}

#[cfg(test)]
mod tests {
    use super::super::{find, Args};
    use crate::tensor::Tensor;

    /// Runs op `name` on `ins` with `params`.
    fn run(name: &str, ins: &[&Tensor], params: &[f64]) -> Vec<Tensor> {
        let def = find(name).unwrap();
        let mut args = Args {
            op: def.name,
            muts: &mut [],
            ins,
            params,
            device: crate::tensor::Device::Cpu,
        };
        (def.run)(&mut args).unwrap()
    }

    fn values(shape: &[usize], seed: usize, lo: f32, hi: f32) -> Tensor {
        let n: usize = shape.iter().product();
        let data = (0..n)
            .map(|i| {
                let u = ((i * 7919 + seed * 104_729) % 1000) as f32 / 1000.0;
                lo + (hi - lo) * u
            })
            .collect();
        Tensor::from_f32(shape.to_vec(), data)
    }

    fn f32s(t: &Tensor) -> Vec<f32> {
        t.f32s("test", 0).unwrap().to_vec()
    }

    #[test]
    fn conv2d_bn_eval_matches_conv_then_batch_norm() {
        // (n, c, o, h, k, stride, pad): Winograd 3x3 s1, im2col 3x3 s1 (few
        // channels), 3x3 s2, 1x1 s2.
        for (n, c, o, h, k, stride, pad) in [
            (3, 16, 16, 8, 3, 1, 1),
            (5, 8, 12, 7, 3, 1, 1),
            (2, 3, 16, 9, 3, 1, 1),
            (4, 16, 32, 8, 3, 2, 1),
            (3, 16, 32, 8, 1, 2, 0),
        ] {
            let x = values(&[n, c, h, h], 1, -1.0, 1.0);
            let w = values(&[o, c, k, k], 2, -0.5, 0.5);
            let gamma = values(&[o], 3, 0.5, 1.5);
            let beta = values(&[o], 4, -0.3, 0.3);
            let mean = values(&[o], 5, -0.2, 0.2);
            let var = values(&[o], 6, 0.3, 2.0);
            let (s, p) = (stride as f64, pad as f64);
            let conv = run("conv2d", &[&x, &w], &[s, p]).remove(0);
            let res = values(&conv.shape, 7, -1.0, 1.0);
            for relu in [false, true] {
                for residual in [false, true] {
                    let bn_in: [&Tensor; 5] = [&conv, &gamma, &beta, &mean, &var];
                    let op = if relu && !residual {
                        "batch_norm_relu_eval"
                    } else {
                        "batch_norm_eval"
                    };
                    let mut want = run(op, &bn_in, &[1e-5]).remove(0);
                    if residual {
                        want = if relu {
                            run("add_relu", &[&want, &res], &[]).remove(0)
                        } else {
                            run("add", &[&want, &res], &[]).remove(0)
                        };
                    }
                    let mut ins = vec![&x, &w, &gamma, &beta, &mean, &var];
                    if residual {
                        ins.push(&res);
                    }
                    let params = [s, p, 1e-5, relu as u8 as f64];
                    let got = run("conv2d_bn_eval", &ins, &params).remove(0);
                    assert_eq!(got.shape, want.shape);
                    let (got, want) = (f32s(&got), f32s(&want));
                    let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
                    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (a - b).abs() <= 1e-5 * scale,
                            "{a} vs {b} at {i} ({n} {c} {o} {h} {k} {stride} {pad} {relu} {residual})"
                        );
                    }
                    let again = crate::cpu::testing::on_one_thread(|| {
                        f32s(&run("conv2d_bn_eval", &ins, &params)[0])
                    });
                    assert_eq!(again, got, "thread count changed the result");
                }
            }
        }
    }
}
