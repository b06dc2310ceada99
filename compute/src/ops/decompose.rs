//! Default decompositions of the fused ops into primitive ops of the table,
//! for devices without fused kernels of their own: each runs through the
//! table ([`On::call`]), so it works on any device whose primitives do. The
//! fused CPU kernels compute the same math in fewer passes; the tests below
//! hold the two together on the cpu.

use super::{find, Args};
use crate::error::Result;
use crate::tensor::{Device, Tensor};

/// Primitive ops run on one device.
#[derive(Clone, Copy)]
struct On(Device);

fn on(a: &Args) -> Result<On> {
    Ok(On(a.device()?))
}

impl On {
    /// Runs op `name` of the table; `muts` are its in-place inputs.
    fn call(
        self,
        name: &str,
        muts: &mut [Tensor],
        ins: &[&Tensor],
        params: &[f64],
    ) -> Result<Vec<Tensor>> {
        let def = find(name)?;
        let mut args = Args {
            op: def.name,
            muts,
            ins,
            params,
            device: self.0,
        };
        (def.run)(&mut args)
    }

    /// The outputs of op `name` (no in-place inputs) as an array.
    fn outs<const K: usize>(
        self,
        name: &str,
        ins: &[&Tensor],
        params: &[f64],
    ) -> Result<[Tensor; K]> {
        let out = self.call(name, &mut [], ins, params)?;
        Ok(out
            .try_into()
            .unwrap_or_else(|v: Vec<Tensor>| panic!("{name}: {} outputs, expected {K}", v.len())))
    }

    fn one(self, name: &str, ins: &[&Tensor], params: &[f64]) -> Result<Tensor> {
        let [t] = self.outs(name, ins, params)?;
        Ok(t)
    }

    fn add(self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        self.one("add", &[a, b], &[])
    }

    fn sub(self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        self.one("sub", &[a, b], &[])
    }

    fn mul(self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        self.one("mul", &[a, b], &[])
    }

    /// `s * x`.
    fn scale(self, x: &Tensor, s: f64) -> Result<Tensor> {
        self.one("affine", &[x], &[s])
    }

    fn relu(self, x: &Tensor) -> Result<Tensor> {
        self.one("relu", &[x], &[])
    }

    fn full(self, value: f64, shape: &[usize]) -> Result<Tensor> {
        let params: Vec<f64> = [value]
            .into_iter()
            .chain(shape.iter().map(|&d| d as f64))
            .collect();
        self.one("full", &[], &params)
    }

    /// `v` [C] repeated over `shape` [N, C, H, W].
    fn per_channel(self, v: &Tensor, shape: &[usize]) -> Result<Tensor> {
        let rows = self.one("expand_dim", &[v], &[1.0, (shape[2] * shape[3]) as f64])?;
        let all = self.one("expand_dim", &[&rows], &[0.0, shape[0] as f64])?;
        let dims: Vec<f64> = shape.iter().map(|&d| d as f64).collect();
        self.one("reshape", &[&all], &dims)
    }

    /// `x * scale[c] + shift[c]` over x [N, C, H, W].
    fn channel_affine(self, x: &Tensor, scale: &Tensor, shift: &Tensor) -> Result<Tensor> {
        let scaled = self.mul(x, &self.per_channel(scale, &x.shape)?)?;
        self.add(&scaled, &self.per_channel(shift, &x.shape)?)
    }

    /// `a * x + b * y + c` with per-channel `a, b, c` over x, y [N, C, H, W].
    fn channel_lin2(self, x: &Tensor, y: &Tensor, [a, b, c]: [&Tensor; 3]) -> Result<Tensor> {
        let ax = self.mul(x, &self.per_channel(a, &x.shape)?)?;
        let by = self.mul(y, &self.per_channel(b, &x.shape)?)?;
        self.add(&self.add(&ax, &by)?, &self.per_channel(c, &x.shape)?)
    }

    /// The training-mode transform's scale and shift from its batch
    /// statistics, computed as `cpu::norm::train_affine` computes them.
    fn train_affine(self, [gamma, beta, mean, invstd]: [&Tensor; 4]) -> Result<[Tensor; 2]> {
        let scale = self.mul(gamma, invstd)?;
        let shift = self.sub(beta, &self.mul(mean, &scale)?)?;
        Ok([scale, shift])
    }

    /// `1 / sqrt(var + eps)` per channel: the scale `batch_norm_eval` gives
    /// ones for a running variance `var` (the table has no reciprocal root).
    fn invstd(self, var: &Tensor, eps: f64) -> Result<Tensor> {
        let c = var.shape[0];
        let ones = self.full(1.0, &[1, c, 1, 1])?;
        let (one, zero) = (self.full(1.0, &[c])?, self.full(0.0, &[c])?);
        let y = self.one("batch_norm_eval", &[&ones, &one, &zero, &zero, var], &[eps])?;
        self.one("reshape", &[&y], &[c as f64])
    }

    /// The running statistics (`muts`) moved towards the batch's `mean` and
    /// biased `var` by `momentum`, in the f32 steps of
    /// `cpu::norm::update_running`.
    fn update_running(
        self,
        muts: &mut [Tensor],
        (mean, var): (&Tensor, &Tensor),
        count: f32,
        momentum: f32,
    ) -> Result<()> {
        let keep = (1.0 - momentum) as f64;
        let m = momentum as f64;
        let new_mean = self.add(&self.scale(&muts[0], keep)?, &self.scale(mean, m)?)?;
        let step = self.scale(&self.scale(var, m)?, crate::cpu::norm::unbias(count) as f64)?;
        let new_var = self.add(&self.scale(&muts[1], keep)?, &step)?;
        self.call("copy_", &mut muts[..1], &[&new_mean], &[])?;
        self.call("copy_", &mut muts[1..], &[&new_var], &[])?;
        Ok(())
    }

    /// The input gradient of a training-mode batch norm of `z` from the
    /// gradient `d` of its output and its sums `dgamma`, `dbeta`, given
    /// rather than taken from `d`: `dx = k d + b z + c`, the coefficients of
    /// `cpu::norm::dx_coefficients`.
    fn bn_dx_from_sums(
        self,
        (z, d): (&Tensor, &Tensor),
        [gamma, mean, invstd]: [&Tensor; 3],
        (dgamma, dbeta): (&Tensor, &Tensor),
    ) -> Result<Tensor> {
        let s = &z.shape;
        let inv_m = (1.0 / (s[0] * s[2] * s[3]) as f32) as f64;
        let k = self.mul(gamma, invstd)?;
        let kis = self.mul(&k, invstd)?;
        let b = self.scale(&self.mul(&kis, &self.scale(dgamma, inv_m)?)?, -1.0)?;
        let kmdy = self.scale(&self.mul(&k, &self.scale(dbeta, inv_m)?)?, -1.0)?;
        let c = self.sub(&kmdy, &self.mul(&b, mean)?)?;
        self.channel_lin2(d, z, [&k, &b, &c])
    }
}

/// `batch_norm_train`, then a ReLU.
pub fn batch_norm_relu_train(a: &mut Args) -> Result<Vec<Tensor>> {
    let on = on(a)?;
    let mut out = on.call("batch_norm_train", a.muts, a.ins, a.params)?;
    let y = on.relu(&out[0])?;
    out[0] = y;
    Ok(out)
}

/// `batch_norm_train` without the residual (input 3), then `add_relu`.
pub fn batch_norm_add_relu_train(a: &mut Args) -> Result<Vec<Tensor>> {
    let on = on(a)?;
    let mut ins = a.ins.to_vec();
    let r = ins.remove(3);
    let mut out = on.call("batch_norm_train", a.muts, &ins, a.params)?;
    let y = on.one("add_relu", &[&out[0], r], &[])?;
    out[0] = y;
    Ok(out)
}

/// `batch_norm_eval`, then a ReLU.
pub fn batch_norm_relu_eval(a: &mut Args) -> Result<Vec<Tensor>> {
    let on = on(a)?;
    let y = on.one("batch_norm_eval", a.ins, a.params)?;
    Ok(vec![on.relu(&y)?])
}

/// The inverse std, the transform, and the running statistics' update, in
/// elementwise ops on [C] vectors.
pub fn batch_norm_train_affine(a: &mut Args) -> Result<Vec<Tensor>> {
    let on = on(a)?;
    let momentum = a.param(0, "momentum")? as f32;
    let eps = a.param(1, "eps")?;
    let count = a.positive(2, "count")? as f32;
    let [gamma, beta, mean, var] = [a.ins[0], a.ins[1], a.ins[2], a.ins[3]];
    let invstd = on.invstd(var, eps)?;
    let [scale, shift] = on.train_affine([gamma, beta, mean, &invstd])?;
    on.update_running(a.muts, (mean, var), count, momentum)?;
    Ok(vec![mean.duplicate(), invstd, scale, shift])
}

/// The ReLU's mask on dy (from its output y), then `batch_norm_backward`.
pub fn batch_norm_add_relu_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    let on = on(a)?;
    let [x, y, dy, gamma, mean, invstd] = [0, 1, 2, 3, 4, 5].map(|i| a.ins[i]);
    let dr = on.one("relu_backward", &[y, dy], &[])?;
    let mut out = on.call(
        "batch_norm_backward",
        &mut [],
        &[x, &dr, gamma, mean, invstd],
        &[],
    )?;
    out.push(dr);
    Ok(out)
}

/// The forward's transform recomputed for the ReLU's mask on dy, then
/// `batch_norm_backward`.
pub fn batch_norm_relu_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    let on = on(a)?;
    let [x, dy, gamma, beta, mean, invstd] = [0, 1, 2, 3, 4, 5].map(|i| a.ins[i]);
    let [scale, shift] = on.train_affine([gamma, beta, mean, invstd])?;
    let pre = on.channel_affine(x, &scale, &shift)?;
    let d = on.one("relu_backward", &[&pre, dy], &[])?;
    on.call(
        "batch_norm_backward",
        &mut [],
        &[x, &d, gamma, mean, invstd],
        &[],
    )
}

/// `conv2d`, `batch_norm_eval`, then the residual and the ReLU.
pub fn conv2d_bn_eval(a: &mut Args) -> Result<Vec<Tensor>> {
    let on = on(a)?;
    let relu = a.flag(3, "relu")?;
    let conv = on.one("conv2d", &a.ins[..2], &a.params[..2])?;
    let bn_ins = [&conv, a.ins[2], a.ins[3], a.ins[4], a.ins[5]];
    let bn = on.one("batch_norm_eval", &bn_ins, &[a.param(2, "eps")?])?;
    let y = match (a.ins.get(6), relu) {
        (Some(r), true) => on.one("add_relu", &[&bn, r], &[])?,
        (Some(r), false) => on.add(&bn, r)?,
        (None, true) => on.relu(&bn)?,
        (None, false) => bn,
    };
    Ok(vec![y])
}

/// The prologue's output `h = relu(z * scale + shift)` recomputed, then
/// `conv2d_backward` on it, the ReLU's mask and `batch_norm_backward`.
pub fn bn_relu_conv2d_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    let on = on(a)?;
    let [z, w, dy, gamma, _beta, mean, invstd, scale, shift] =
        [0, 1, 2, 3, 4, 5, 6, 7, 8].map(|i| a.ins[i]);
    let h = on.relu(&on.channel_affine(z, scale, shift)?)?;
    let conv_params = [a.params[0], a.params[1], 0.0, 1.0];
    let [dh, dw] = on.outs("conv2d_backward", &[&h, w, dy], &conv_params)?;
    let dm = on.one("relu_backward", &[&h, &dh], &[])?;
    let [dz, dgamma, dbeta] =
        on.outs("batch_norm_backward", &[z, &dm, gamma, mean, invstd], &[])?;
    Ok(vec![dz, dw, dgamma, dbeta])
}

/// bn2's backward (from the output's gradient, or with chained_in from the
/// given masked gradient and sums), conv2's, bn1's behind its ReLU, conv1's
/// with the shortcut's gradient added, and with chained_out the previous
/// block's ReLU mask and bn2 sums on dx; outputs as the fused op's.
pub fn residual_block_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    let on = on(a)?;
    let ins = a.ins;
    let chained_in = a.param_or(4, "chained_in", 0.0)? != 0.0;
    let chained_out = a.param_or(5, "chained_out", 0.0)? != 0.0;
    let [x, w1, z1, w2, z2] = [0, 1, 2, 3, 4].map(|i| ins[i]);
    let bn1 = [5, 6, 7].map(|i| ins[i]);
    let [scale1, shift1] = [8, 9].map(|i| ins[i]);
    let bn2 = [10, 11, 12].map(|i| ins[i]);
    let [gamma2, mean2, invstd2] = bn2;
    // bn2's first pass: the output's gradient masked by the ReLU (also the
    // shortcut's gradient), and bn2's sums.
    let out_at = if chained_in { 16 } else { 15 };
    let (masked, dz2, dgamma2, dbeta2) = if chained_in {
        let sums = (ins[14], ins[15]);
        let dz2 = on.bn_dx_from_sums((z2, ins[13]), bn2, sums)?;
        (None, dz2, ins[14].duplicate(), ins[15].duplicate())
    } else {
        let dr = on.one("relu_backward", &[ins[13], ins[14]], &[])?;
        let [dz2, dgamma2, dbeta2] = on.outs(
            "batch_norm_backward",
            &[z2, &dr, gamma2, mean2, invstd2],
            &[],
        )?;
        (Some(dr), dz2, dgamma2, dbeta2)
    };
    let dr = masked.as_ref().unwrap_or(ins[13]);
    let h1 = on.relu(&on.channel_affine(z1, scale1, shift1)?)?;
    let conv2_params = [a.params[2], a.params[3], 0.0, 1.0];
    let [dh1, dw2] = on.outs("conv2d_backward", &[&h1, w2, &dz2], &conv2_params)?;
    let dm1 = on.one("relu_backward", &[&h1, &dh1], &[])?;
    let [gamma1, mean1, invstd1] = bn1;
    let [dz1, dgamma1, dbeta1] = on.outs(
        "batch_norm_backward",
        &[z1, &dm1, gamma1, mean1, invstd1],
        &[],
    )?;
    // The shortcut's gradient, plus any other collected for x.
    let pending = match ins.get(out_at) {
        Some(p) if !chained_out => Some(on.add(dr, p)?),
        _ => None,
    };
    let acc = pending.as_ref().unwrap_or(dr);
    let conv1_params = [a.params[0], a.params[1], 0.0, 1.0];
    let [dx, dw1] = on.outs("conv2d_backward", &[x, w1, &dz1, acc], &conv1_params)?;
    let mut outs = if chained_out {
        previous_block_grads(on, x, dx, [ins[out_at], ins[out_at + 1], ins[out_at + 2]])?
    } else {
        vec![dx]
    };
    outs.extend([dw1, dgamma1, dbeta1, dw2, dgamma2, dbeta2]);
    Ok(outs)
}

/// The previous block's `dr, dgamma2, dbeta2` from dx, the gradient of its
/// output `y`: dx masked where `y` is 0, and the sums of its bn2 of `z`
/// (those of `batch_norm_backward`, whose dx is not needed: any gamma does).
fn previous_block_grads(
    on: On,
    y: &Tensor,
    dx: Tensor,
    [z, mean, invstd]: [&Tensor; 3],
) -> Result<Vec<Tensor>> {
    let dr = on.one("relu_backward", &[y, &dx], &[])?;
    let [_, dgamma, dbeta] =
        on.outs("batch_norm_backward", &[z, &dr, invstd, mean, invstd], &[])?;
    Ok(vec![dr, dgamma, dbeta])
}

#[cfg(test)]
mod tests {
    use super::super::{find, OpFn};
    use super::*;
    use crate::gpu::testing::{max_rel_diff, values};

    /// `scale * v + offset` of shape `shape`, on the cpu.
    fn t(shape: &[usize], seed: u32, scale: f32, offset: f32) -> Tensor {
        let n = shape.iter().product();
        let v = values(n, seed).iter().map(|x| scale * x + offset).collect();
        Tensor::from_f32(shape.to_vec(), v)
    }

    /// [`t`] through a ReLU: about half zeros, for the masks.
    fn relu_t(shape: &[usize], seed: u32) -> Tensor {
        let mut x = t(shape, seed, 1.0, 0.0);
        x.f32s_mut("test", 0)
            .unwrap()
            .iter_mut()
            .for_each(|v| *v = v.max(0.0));
        x
    }

    fn f32s(t: &Tensor) -> &[f32] {
        t.f32s("test", 0).unwrap()
    }

    fn run(
        f: OpFn,
        name: &'static str,
        muts: &mut [Tensor],
        ins: &[&Tensor],
        params: &[f64],
    ) -> Vec<Tensor> {
        let mut args = Args {
            op: name,
            muts,
            ins,
            params,
            device: Device::Cpu,
        };
        f(&mut args).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// Runs the fused op `name` (its cpu kernel) and `decomposed` on copies
    /// of `muts` and on `ins`; checks outputs and the in-place inputs agree
    /// to `tol` by [`max_rel_diff`].
    fn check(
        name: &'static str,
        decomposed: OpFn,
        muts: &[Tensor],
        ins: &[&Tensor],
        params: &[f64],
        tol: f32,
    ) {
        let copies = || muts.iter().map(Tensor::duplicate).collect::<Vec<_>>();
        let (mut m_fused, mut m_dec) = (copies(), copies());
        let fused = run(find(name).unwrap().run, name, &mut m_fused, ins, params);
        let dec = run(decomposed, name, &mut m_dec, ins, params);
        assert_eq!(fused.len(), dec.len(), "{name}: output counts");
        let all = fused.iter().zip(&dec).chain(m_fused.iter().zip(&m_dec));
        for (i, (want, got)) in all.enumerate() {
            assert_eq!(want.shape, got.shape, "{name}: shape of output {i}");
            // max_rel_diff passes NaN over: finite values are required.
            assert!(
                f32s(got).iter().all(|v| v.is_finite()),
                "{name}: output {i}"
            );
            let d = max_rel_diff(f32s(want), f32s(got));
            assert!(d <= tol, "{name} {params:?}: output {i} differs by {d}");
        }
        for (before, after) in muts.iter().zip(&m_dec) {
            assert_ne!(
                f32s(before),
                f32s(after),
                "{name}: running statistics not updated"
            );
        }
    }

    /// Running mean and variance of `c` channels.
    fn running(c: usize) -> [Tensor; 2] {
        [t(&[c], 10, 0.2, 0.0), t(&[c], 11, 0.2, 1.0)]
    }

    #[test]
    fn training_forwards_match_the_fused_kernels() {
        let (shape, c) = ([3, 5, 7, 9], [5]);
        let (x, r) = (t(&shape, 1, 1.0, 0.3), t(&shape, 2, 1.0, 0.0));
        let (gamma, beta) = (t(&c, 3, 0.5, 1.0), t(&c, 4, 0.3, 0.0));
        let (mean, var) = (t(&c, 5, 0.3, 0.0), t(&c, 6, 0.3, 0.8));
        // Both run the same primitive statistics and transform; only the
        // ReLU and the residual sum come in separate passes: to rounding.
        let tol = 1e-6;
        for given in [false, true] {
            let params = [0.1, 1e-5, given as u8 as f64];
            let stats: &[&Tensor] = if given { &[&mean, &var] } else { &[] };
            let ins = [&[&x, &gamma, &beta][..], stats].concat();
            check(
                "batch_norm_relu_train",
                batch_norm_relu_train,
                &running(5),
                &ins,
                &params,
                tol,
            );
            let ins = [&[&x, &gamma, &beta, &r][..], stats].concat();
            check(
                "batch_norm_add_relu_train",
                batch_norm_add_relu_train,
                &running(5),
                &ins,
                &params,
                tol,
            );
        }
        let affine_ins = [&gamma, &beta, &mean, &var];
        check(
            "batch_norm_train_affine",
            batch_norm_train_affine,
            &running(5),
            &affine_ins,
            &[0.1, 1e-5, 189.0],
            tol,
        );
        let [rm, rv] = running(5);
        let eval_ins = [&x, &gamma, &beta, &rm, &rv];
        check(
            "batch_norm_relu_eval",
            batch_norm_relu_eval,
            &[],
            &eval_ins,
            &[1e-5],
            tol,
        );
    }

    #[test]
    fn batch_norm_backwards_match_the_fused_kernels() {
        let (shape, c) = ([3, 5, 7, 9], [5]);
        let (x, dy, y) = (
            t(&shape, 1, 1.0, 0.3),
            t(&shape, 2, 1.0, 0.0),
            relu_t(&shape, 3),
        );
        let (gamma, beta) = (t(&c, 4, 0.5, 1.0), t(&c, 5, 0.3, 0.0));
        let (mean, invstd) = (t(&c, 6, 0.3, 0.0), t(&c, 7, 0.3, 1.2));
        // The fused kernels take the channel sums in another order.
        let tol = 1e-5;
        let ins = [&x, &y, &dy, &gamma, &mean, &invstd];
        check(
            "batch_norm_add_relu_backward",
            batch_norm_add_relu_backward,
            &[],
            &ins,
            &[],
            tol,
        );
        let ins = [&x, &dy, &gamma, &beta, &mean, &invstd];
        check(
            "batch_norm_relu_backward",
            batch_norm_relu_backward,
            &[],
            &ins,
            &[],
            tol,
        );
    }

    #[test]
    fn conv2d_bn_eval_matches_the_folded_kernel() {
        let (x, w) = (t(&[2, 3, 6, 6], 1, 1.0, 0.0), t(&[4, 3, 3, 3], 2, 0.5, 0.0));
        let vecs = [(3, 0.5, 1.0), (4, 0.3, 0.0), (5, 0.2, 0.0), (6, 0.3, 1.0)]
            .map(|(s, a, o)| t(&[4], s, a, o));
        for (stride, out) in [(1.0, 6), (2.0, 3)] {
            let res = t(&[2, 4, out, out], 7, 1.0, 0.0);
            for relu in [0.0, 1.0] {
                let mut ins = vec![&x, &w, &vecs[0], &vecs[1], &vecs[2], &vecs[3]];
                let params = [stride, 1.0, 1e-5, relu];
                // Folded weights round differently from conv then scale.
                check("conv2d_bn_eval", conv2d_bn_eval, &[], &ins, &params, 1e-5);
                ins.push(&res);
                check("conv2d_bn_eval", conv2d_bn_eval, &[], &ins, &params, 1e-5);
            }
        }
    }

    #[test]
    fn bn_relu_conv2d_backward_matches_the_fused_kernel() {
        let (z, w) = (t(&[2, 3, 6, 6], 1, 1.0, 0.2), t(&[4, 3, 3, 3], 2, 0.5, 0.0));
        let vecs = [(3, 0.5, 1.0), (4, 0.3, 0.0), (5, 0.3, 0.0), (6, 0.3, 1.2)]
            .map(|(s, a, o)| t(&[3], s, a, o));
        let [gamma, beta, mean, invstd] = &vecs;
        let scale: Vec<f32> = f32s(gamma)
            .iter()
            .zip(f32s(invstd))
            .map(|(g, s)| g * s)
            .collect();
        let shift = (0..3)
            .map(|c| f32s(beta)[c] - f32s(mean)[c] * scale[c])
            .collect();
        let (scale, shift) = (
            Tensor::from_f32(vec![3], scale),
            Tensor::from_f32(vec![3], shift),
        );
        for (stride, out) in [(1.0, 6), (2.0, 3)] {
            let dy = t(&[2, 4, out, out], 7, 1.0, 0.0);
            let ins = [&z, &w, &dy, gamma, beta, mean, invstd, &scale, &shift];
            // The fused kernel takes bn's sums as the data gradient is
            // written, and convolves by other paths (Winograd, im2col).
            check(
                "bn_relu_conv2d_backward",
                bn_relu_conv2d_backward,
                &[],
                &ins,
                &[stride, 1.0],
                1e-4,
            );
        }
    }

    #[test]
    fn residual_block_backward_matches_the_fused_kernel() {
        let (x_shape, z1_shape) = ([2, 3, 5, 5], [2, 4, 5, 5]);
        let x = relu_t(&x_shape, 1);
        let (w1, w2) = (t(&[4, 3, 3, 3], 2, 0.5, 0.0), t(&[3, 4, 3, 3], 3, 0.5, 0.0));
        let (z1, z2) = (t(&z1_shape, 4, 1.0, 0.1), t(&x_shape, 5, 1.0, 0.0));
        let bn1 = [
            (6, 0.5, 1.0),
            (7, 0.3, 0.0),
            (8, 0.3, 1.2),
            (9, 0.5, 0.5),
            (10, 0.3, 0.0),
        ]
        .map(|(s, a, o)| t(&[4], s, a, o));
        let bn2 =
            [(11, 0.5, 1.0), (12, 0.3, 0.0), (13, 0.3, 1.2)].map(|(s, a, o)| t(&[3], s, a, o));
        let (out, dout) = (relu_t(&x_shape, 14), t(&x_shape, 15, 1.0, 0.0));
        // Chained-in sums unrelated to dr: the decomposition must use them.
        let (dr, dgamma2, dbeta2) = (
            relu_t(&x_shape, 16),
            t(&[3], 17, 1.0, 0.0),
            t(&[3], 18, 1.0, 0.0),
        );
        let dx_acc = t(&x_shape, 19, 1.0, 0.0);
        let prev = [
            t(&x_shape, 20, 1.0, 0.0),
            t(&[3], 21, 0.3, 0.0),
            t(&[3], 22, 0.3, 1.2),
        ];
        let head: Vec<&Tensor> = [&x, &w1, &z1, &w2, &z2]
            .into_iter()
            .chain(&bn1)
            .chain(&bn2)
            .collect();
        for chained_in in [false, true] {
            let incoming: Vec<&Tensor> = if chained_in {
                vec![&dr, &dgamma2, &dbeta2]
            } else {
                vec![&out, &dout]
            };
            let outgoing: [Vec<&Tensor>; 3] = [vec![], vec![&dx_acc], prev.iter().collect()];
            for (k, tail) in outgoing.iter().enumerate() {
                let ins = [&head[..], &incoming, tail].concat();
                let params = [
                    1.0,
                    1.0,
                    1.0,
                    1.0,
                    chained_in as u8 as f64,
                    (k == 2) as u8 as f64,
                ];
                // Sums and convolutions in other orders, through two layers.
                check(
                    "residual_block_backward",
                    residual_block_backward,
                    &[],
                    &ins,
                    &params,
                    1e-4,
                );
            }
        }
    }
}
