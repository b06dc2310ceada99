//! 2-D convolution as im2col + GEMM, one image per task.
//!
//! Forward: `y[n] = W[O, K] * col(x[n])[K, P]` with `K = C*kh*kw`, `P = Ho*Wo`
//! (our kernels of [`super::gemm_level`] at AVX-512 and AVX2); stride-1 3x3
//! convolutions with enough channels go through Winograd F(4x4, 3x3) in
//! [`super::winograd`] instead.
//! Backward data: for stride 1, a forward convolution of `dy` with the
//! flipped, transposed weights; otherwise `dx[n] = col2im(W^T * dy[n])`.
//! Backward weight: `dW^T = sum_n col(x[n]) * dy[n]^T`, summed per fixed image
//! group and then across groups in order, so the result never depends on the
//! thread count (Winograd's own weight gradient, [`super::winograd_wgrad`],
//! where it serves the forward).

use rayon::prelude::*;

use super::gemm::{matmul, Mat};
use super::gemm_level::{gemm_nt_acc, matmul_nn, matmul_nn_acc};
use super::norm::{group_grad_sums, AddReluSums, BnBackward, BnGeom, DeferredDx};
pub use super::winograd_wgrad::Dy;
use crate::buffers::Scratch;
use crate::error::Result;
use crate::geometry::{ConvGeom, ConvInputs, Epilogue, Prologue};
use crate::ops::Args;
use crate::tensor::Tensor;

/// Unfolds one image `x [C, H, W]` into `col [K, P]`.
fn im2col(g: &ConvGeom, x: &[f32], col: &mut [f32]) {
    im2col_ld(g, x, col, g.p());
}

/// [`im2col`] into rows `ld` apart.
fn im2col_ld(g: &ConvGeom, x: &[f32], col: &mut [f32], ld: usize) {
    let p = g.p();
    assert!(x.len() >= g.in_size() && (g.k() == 0 || col.len() >= (g.k() - 1) * ld + p));
    #[cfg(target_arch = "x86_64")]
    if (g.stride == 1 || g.stride == 2) && super::simd::level() >= super::simd::AVX2 {
        let avx512 = super::simd::level() >= super::simd::AVX512;
        let (x, col) = (x.as_ptr(), col.as_mut_ptr());
        // SAFETY: the CPU has the level's features; reads stay within the
        // planes (masked loads) and writes within the rows, as asserted above.
        unsafe {
            match (avx512, g.stride == 1) {
                (true, true) => x86::avx512::im2col_s1(g, x, col, ld),
                (true, false) => x86::avx512::im2col_s2(g, x, col, ld),
                (false, true) => x86::avx2::im2col_s1(g, x, col, ld),
                (false, false) => x86::avx2::im2col_s2(g, x, col, ld),
            }
        };
        return;
    }
    im2col_portable(g, x, col, ld);
}

/// [`im2col_ld`] in scalar code.
fn im2col_portable(g: &ConvGeom, x: &[f32], col: &mut [f32], ld: usize) {
    let (s, pad) = (g.stride as isize, g.pad as isize);
    let p = g.p();
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &mut col[((c * g.kh + i) * g.kw + j) * ld..][..p];
                for oy in 0..g.ho {
                    let iy = oy as isize * s - pad + i as isize;
                    let out = &mut row[oy * g.wo..(oy + 1) * g.wo];
                    if iy < 0 || iy >= g.h as isize {
                        out.fill(0.0);
                        continue;
                    }
                    let src = &plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                    if s == 1 {
                        // Contiguous run with zero margins where the window leaves the image.
                        let start = j as isize - pad;
                        let lo = (-start).clamp(0, g.wo as isize) as usize;
                        let hi = ((g.w as isize - start).clamp(0, g.wo as isize)) as usize;
                        out[..lo].fill(0.0);
                        if hi > lo {
                            let from = (lo as isize + start) as usize;
                            out[lo..hi].copy_from_slice(&src[from..from + hi - lo]);
                        }
                        out[hi.max(lo)..].fill(0.0);
                    } else {
                        // Outputs `lo..hi` read columns `ox * s + start` inside the
                        // image; the margins are zero.
                        let start = j as isize - pad;
                        // The first `ox` (at most `wo`) with `ox * s + start >= bound`.
                        let first_inside = |bound: isize| -> usize {
                            let ox = ((bound - start).max(0) as usize).div_ceil(s as usize);
                            ox.min(g.wo)
                        };
                        let (lo, hi) = (first_inside(0), first_inside(g.w as isize));
                        out[..lo].fill(0.0);
                        if hi > lo {
                            let from = (lo as isize * s + start) as usize;
                            let cols = src[from..].iter().step_by(s as usize);
                            out[lo..hi].iter_mut().zip(cols).for_each(|(v, x)| *v = *x);
                        }
                        out[hi.max(lo)..].fill(0.0);
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    crate::cpu::vec16::kernels_at_each_level!(pub(super), "unfold_kernels.rs");

    use crate::cpu::lanes::mask as lanes;
    use crate::geometry::ConvGeom;

    /// For a row of output columns from `ox0` on, shifted by `j - pad`:
    /// the source offset, the mask of source columns inside the image, and
    /// the mask of the (up to 16) output columns.
    #[inline(always)]
    pub(super) fn row_masks(g: &ConvGeom, ox0: usize, j: usize) -> (isize, u16, u16) {
        let n = (g.wo - ox0).min(16);
        let from = ox0 as isize + j as isize - g.pad as isize;
        let lo = (-from).clamp(0, 16) as usize;
        let hi = (g.w as isize - from).clamp(0, 16) as usize;
        (from, lanes(hi.min(n)) & !lanes(lo), lanes(n))
    }
}

/// Folds `col [K, P]` back into `dx [C, H, W]`, adding overlapping windows.
fn col2im(g: &ConvGeom, col: &[f32], dx: &mut [f32]) {
    let p = g.p();
    assert!(dx.len() >= g.in_size() && col.len() >= g.k() * p);
    #[cfg(target_arch = "x86_64")]
    if (g.stride == 1 || g.stride == 2) && super::simd::level() >= super::simd::AVX2 {
        let avx512 = super::simd::level() >= super::simd::AVX512;
        let (col, dx) = (col.as_ptr(), dx.as_mut_ptr());
        // SAFETY: the CPU has the level's features; masked accesses stay
        // within the planes and the rows, as asserted above.
        unsafe {
            match (avx512, g.stride == 1) {
                (true, true) => x86::avx512::col2im_s1(g, col, dx),
                (true, false) => x86::avx512::col2im_s2(g, col, dx),
                (false, true) => x86::avx2::col2im_s1(g, col, dx),
                (false, false) => x86::avx2::col2im_s2(g, col, dx),
            }
        };
        return;
    }
    col2im_portable(g, col, dx);
}

/// [`col2im`] in scalar code.
fn col2im_portable(g: &ConvGeom, col: &[f32], dx: &mut [f32]) {
    let (s, pad) = (g.stride as isize, g.pad as isize);
    let p = g.p();
    dx.fill(0.0);
    for c in 0..g.c {
        let plane = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &col[((c * g.kh + i) * g.kw + j) * p..][..p];
                for oy in 0..g.ho {
                    let iy = oy as isize * s - pad + i as isize;
                    if iy < 0 || iy >= g.h as isize {
                        continue;
                    }
                    let dst = &mut plane[iy as usize * g.w..(iy as usize + 1) * g.w];
                    let src = &row[oy * g.wo..(oy + 1) * g.wo];
                    if s == 1 {
                        let start = j as isize - pad;
                        let lo = (-start).clamp(0, g.wo as isize) as usize;
                        let hi = ((g.w as isize - start).clamp(0, g.wo as isize)) as usize;
                        for ox in lo..hi {
                            dst[(ox as isize + start) as usize] += src[ox];
                        }
                    } else {
                        for (ox, v) in src.iter().enumerate() {
                            let ix = ox as isize * s - pad + j as isize;
                            if ix >= 0 && ix < g.w as isize {
                                dst[ix as usize] += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The input with `pro` applied, for the paths that read it from memory
/// (as the batch-norm kernels compute it).
fn materialize(pro: &Prologue, g: &ConvGeom, x: &[f32]) -> Vec<f32> {
    let bn = super::norm::BnGeom {
        n: g.n,
        c: g.c,
        hw: g.h * g.w,
    };
    let mut h = crate::buffers::uninit_f32(x.len());
    super::norm::scale_shift(bn, x, pro.scale, pro.shift, &mut h, true);
    h
}

/// `y = conv(x, w) + b`.
pub fn conv2d_forward(g: &ConvGeom, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
    conv2d_forward_ep(g, x, w, Epilogue::bias(b), y);
}

/// The `conv2d` op on host tensors (inputs as `io` says, shapes checked):
/// y, and with `io.with_stats` each output channel's batch mean and biased
/// variance.
pub fn conv2d_op(a: &Args, g: &ConvGeom, io: ConvInputs) -> Result<Vec<Tensor>> {
    let bias = io.bias.map(|i| a.f32(i)).transpose()?;
    let pro = match io.prologue {
        Some(i) => Some(Prologue {
            scale: a.f32(i)?,
            shift: a.f32(i + 1)?,
        }),
        None => None,
    };
    let mut y = crate::buffers::uninit_f32(g.n * g.o * g.p());
    let shape = vec![g.n, g.o, g.ho, g.wo];
    if !io.with_stats {
        conv2d_forward(g, a.f32(0)?, a.f32(1)?, bias, &mut y);
        return Ok(vec![Tensor::from_f32(shape, y)]);
    }
    let ep = Epilogue::bias(bias);
    let (mean, var) = conv2d_forward_stats(g, (a.f32(0)?, pro), a.f32(1)?, ep, &mut y);
    Ok(vec![
        Tensor::from_f32(shape, y),
        Tensor::from_f32(vec![g.o], mean),
        Tensor::from_f32(vec![g.o], var),
    ])
}

/// The convolution followed by `ep`, applied as each output block is written.
pub fn conv2d_forward_ep(g: &ConvGeom, x: &[f32], w: &[f32], ep: Epilogue, y: &mut [f32]) {
    assert!(ep.bias.is_none_or(|b| b.len() >= g.o));
    assert!(ep.residual.is_none_or(|r| r.len() == y.len()));
    if super::winograd::applies(g) {
        return super::winograd::forward(g, x, w, ep, y);
    }
    im2col_forward(g, x, w, ep, y);
}

/// [`conv2d_forward_ep`], also returning the batch mean and biased variance
/// of each output channel (what a following training-mode batch norm
/// needs); the Winograd path takes them from each image group's output while
/// it is still in cache.
/// With `pro`, the convolution is of `pro(x)`.
pub fn conv2d_forward_stats(
    g: &ConvGeom,
    (x, pro): (&[f32], Option<Prologue>),
    w: &[f32],
    ep: Epilogue,
    y: &mut [f32],
) -> (Vec<f32>, Vec<f32>) {
    let bn = super::norm::BnGeom {
        n: g.n,
        c: g.o,
        hw: g.p(),
    };
    if super::winograd::applies(g) {
        let groups = super::winograd::forward_moments(g, (x, pro), w, ep, y);
        return super::norm::merge_moments(&groups, g.o);
    }
    match pro {
        Some(p) => {
            let h = materialize(&p, g, x);
            conv2d_forward_ep(g, &h, w, ep, y);
            crate::buffers::recycle_f32(h);
        }
        None => conv2d_forward_ep(g, x, w, ep, y),
    }
    super::norm::channel_stats(bn, y)
}

/// `y = conv(x, w)` then `ep`, through im2col and GEMM.
pub(crate) fn im2col_forward(g: &ConvGeom, x: &[f32], w: &[f32], ep: Epilogue, y: &mut [f32]) {
    let (k, p) = (g.k(), g.p());
    let out_size = g.o * p;
    let wm = Mat::rm(w, g.o, k);
    // With few images, let the GEMM itself use the threads instead.
    let gemm_parallel = g.n < rayon::current_num_threads();
    y.par_chunks_mut(out_size).enumerate().for_each_init(
        || Scratch::uninit(if g.is_pointwise() { 0 } else { k * p }),
        |col, (n, y_n)| {
            let x_n = &x[n * g.in_size()..(n + 1) * g.in_size()];
            let cm = if g.is_pointwise() {
                Mat::rm(x_n, k, p)
            } else {
                im2col(g, x_n, col);
                Mat::rm(col, k, p)
            };
            if gemm_parallel || !matmul_nn(g.o, p, k, w, cm.data, y_n) {
                matmul(wm, cm, y_n, false, gemm_parallel);
            }
            apply_epilogue(&ep, n * out_size, p, y_n);
        },
    );
}

/// `ep` on the planes `y [O', P]` that start at output element `start`.
fn apply_epilogue(ep: &Epilogue, start: usize, p: usize, y: &mut [f32]) {
    if let Some(b) = ep.bias {
        for (o, row) in y.chunks_mut(p).enumerate() {
            row.iter_mut().for_each(|v| *v += b[o]);
        }
    }
    if let Some(r) = ep.residual_at(start, y.len()) {
        y.iter_mut().zip(r).for_each(|(v, r)| *v += r);
    }
    if ep.relu {
        y.iter_mut().for_each(|v| *v = v.max(0.0));
    }
}

/// Images per group in the weight-gradient reduction: a function of the
/// batch size only, so the summation order is fixed.
fn group_size(n: usize) -> usize {
    n.div_ceil(16).max(1)
}

/// Gradients of the convolution. Returns `(dw, db)`; writes `dx` if given,
/// plus `dx_acc` where given (a gradient already collected for `x`, added as
/// the data gradient is written instead of in a pass of its own). With
/// `pro`, the convolution was of `pro(x)`, and `dx` is the gradient with
/// respect to `pro(x)`.
pub fn conv2d_backward(
    g: &ConvGeom,
    (x, pro): (&[f32], Option<Prologue>),
    w: &[f32],
    dy: &[f32],
    mut dx: Option<&mut [f32]>,
    dx_acc: Option<&[f32]>,
    with_bias: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    if let Some(p) = pro {
        // The Winograd weight gradient applies the prologue itself (it needs
        // a vector level, which `applies` checks); elsewhere it is written out.
        if !super::winograd::applies(g) {
            let h = materialize(&p, g, x);
            let out = conv2d_backward(g, (&h, None), w, dy, dx, dx_acc, with_bias);
            crate::buffers::recycle_f32(h);
            return out;
        }
    }
    assert!(dx_acc.is_none_or(|a| dx.as_ref().is_some_and(|d| d.len() == a.len())));
    let tg = transposed_geom(g);
    if let (Some(dx), Some(tg)) = (dx.as_deref_mut(), tg) {
        if super::winograd_wgrad::fuses(g, &tg) {
            let (dw, _) = fused_backward(
                (g, &tg),
                (x, pro),
                w,
                Dy::Given(dy),
                (dx, dx_acc),
                |_, _| (),
            );
            return (dw, with_bias.then(|| bias_grad(g, dy)));
        }
    }
    // The data gradient as a convolution of `dy` where that is cheap
    // (`dx` is then written here); otherwise `dx` is left to the weight pass.
    let dx = match (dx, tg) {
        (Some(dx), Some(tg)) => {
            let wf = flipped_weights(g, w);
            let ep = Epilogue {
                residual: dx_acc,
                ..Default::default()
            };
            conv2d_forward_ep(&tg, dy, &wf, ep, dx);
            crate::buffers::recycle_f32(wf);
            None
        }
        (dx, _) => dx,
    };
    let late_acc = |dx: &mut [f32]| {
        if let Some(acc) = dx_acc {
            dx.iter_mut().zip(acc).for_each(|(d, a)| *d += a);
        }
    };
    if super::simd::level() >= super::simd::AVX2 {
        if let Some(dx) = dx {
            data_grad_col2im(g, w, dy, dx);
            late_acc(dx);
        }
        if super::winograd::applies(g) {
            let dw = super::winograd_wgrad::weight_grad(g, (x, pro), dy);
            return (dw, with_bias.then(|| bias_grad(g, dy)));
        }
        let parts = weight_grad_partials(g, x, dy, with_bias);
        return finish_fused(g, parts, with_bias);
    }
    match dx {
        Some(dx) => {
            let out = weight_grads(g, x, w, dy, Some(&mut *dx), with_bias);
            late_acc(dx);
            out
        }
        None => weight_grads(g, x, w, dy, None, with_bias),
    }
}

/// The `conv2d_backward` op on host tensors (x, w, dy, optional dx_acc;
/// shapes checked): [dx if need_dx], dw, [db if with_bias].
pub fn conv2d_backward_op(
    a: &Args,
    g: &ConvGeom,
    with_bias: bool,
    need_dx: bool,
) -> Result<Vec<Tensor>> {
    let dx_acc = (a.ins.len() == 4).then(|| a.f32(3)).transpose()?;
    let mut dx = need_dx.then(|| crate::buffers::uninit_f32(g.n * g.in_size()));
    let (x, w, dy) = (a.f32(0)?, a.f32(1)?, a.f32(2)?);
    let (dw, db) = conv2d_backward(g, (x, None), w, dy, dx.as_deref_mut(), dx_acc, with_bias);
    let mut out = Vec::with_capacity(3);
    if let Some(dx) = dx {
        out.push(Tensor::from_f32(a.input(0).shape.clone(), dx));
    }
    out.push(Tensor::from_f32(a.input(1).shape.clone(), dw));
    if let Some(db) = db {
        out.push(Tensor::from_f32(vec![g.o], db));
    }
    Ok(out)
}

/// The backward of `conv(pro(x))` where `pro` is a training-mode batch norm +
/// ReLU (its input `x`, its forward's statistics `bn`): returns `dw` and, for
/// the batch norm + ReLU backward that follows, per channel
/// `[sum d, sum d (x - mean)]` of `dx` behind the ReLU mask; writes `dx`, the
/// gradient with respect to `pro(x)`. Where the data gradient runs on
/// Winograd, the sums are taken from each image group's `dx` while it is
/// still in cache.
/// `dy` may be deferred (see [`Dy`]).
pub fn conv2d_backward_bn(
    g: &ConvGeom,
    (x, pro): (&[f32], Prologue),
    w: &[f32],
    dy: Dy,
    dx: &mut [f32],
    bn: BnBackward,
) -> (Vec<f32>, Vec<[f64; 2]>) {
    let geom = BnGeom {
        n: g.n,
        c: g.c,
        hw: g.h * g.w,
    };
    match transposed_geom(g) {
        Some(tg) if super::winograd_wgrad::fuses(g, &tg) => {
            let in_size = g.c * g.h * g.w;
            let sums_of = |first: usize, dx_grp: &mut [f32]| {
                let grp = BnGeom {
                    n: dx_grp.len() / in_size,
                    ..geom
                };
                group_grad_sums(grp, dx_grp, &x[first * in_size..][..dx_grp.len()], bn)
            };
            let (dw, groups) = fused_backward((g, &tg), (x, Some(pro)), w, dy, (dx, None), sums_of);
            (dw, merge_sums(groups.into_iter(), g.c))
        }
        _ => {
            let dy = written_out(dy);
            let (dw, _) = conv2d_backward(g, (x, Some(pro)), w, &dy, Some(dx), None, false);
            (dw, group_grad_sums(geom, dx, x, bn))
        }
    }
}

/// [`super::winograd_wgrad::backward`] of `g` (`tg` its data gradient's
/// geometry) with the weights `w` flipped for the data gradient.
fn fused_backward<R: Send>(
    (g, tg): (&ConvGeom, &ConvGeom),
    x: (&[f32], Option<Prologue>),
    w: &[f32],
    dy: Dy,
    dx: (&mut [f32], Option<&[f32]>),
    after: impl Fn(usize, &mut [f32]) -> R + Sync,
) -> (Vec<f32>, Vec<R>) {
    let wf = flipped_weights(g, w);
    let out = super::winograd_wgrad::backward((g, tg), x, &wf, dy, dx, after);
    crate::buffers::recycle_f32(wf);
    out
}

/// `dy` as one tensor (computing it where it is deferred).
fn written_out(dy: Dy) -> std::borrow::Cow<[f32]> {
    match dy {
        Dy::Given(d) => std::borrow::Cow::Borrowed(d),
        Dy::Deferred(d) => std::borrow::Cow::Owned(d.materialize()),
    }
}

/// The gradients of a bias-free convolution of `x` whose output gradient
/// is the deferred second pass of a batch norm backward (see [`Dy`]):
/// returns `dw` and writes `dx`, plus `dx_acc`. On Winograd the batch norm
/// pass runs image group by image group as the convolution reads it. With
/// `then`, `dx` is masked and summed for an earlier batch norm's backward
/// as it is written (see [`AddReluSums`]), and the sums are returned.
pub fn conv2d_backward_deferred(
    g: &ConvGeom,
    x: &[f32],
    w: &[f32],
    dy: DeferredDx,
    (dx, dx_acc): (&mut [f32], Option<&[f32]>),
    then: Option<AddReluSums>,
) -> (Vec<f32>, Option<Vec<[f64; 2]>>) {
    let in_size = g.c * g.h * g.w;
    if let Some(tg) = transposed_geom(g).filter(|tg| super::winograd_wgrad::fuses(g, tg)) {
        let dyd = Dy::Deferred(dy);
        let sums_of = |first: usize, dx_grp: &mut [f32]| then.map(|t| t.group(first, dx_grp));
        let (dw, groups) = fused_backward((g, &tg), (x, None), w, dyd, (dx, dx_acc), sums_of);
        let sums = then.map(|t| merge_sums(groups.into_iter().flatten(), t.g.c));
        return (dw, sums);
    }
    let dy = dy.materialize();
    let (dw, _) = conv2d_backward(g, (x, None), w, &dy, Some(&mut *dx), dx_acc, false);
    crate::buffers::recycle_f32(dy);
    let sums = then.map(|t| {
        let groups = dx
            .chunks_mut(in_size)
            .enumerate()
            .map(|(n, d)| t.group(n, d));
        merge_sums(groups, t.g.c)
    });
    (dw, sums)
}

/// Per-channel sums of image groups, added in group order.
fn merge_sums(groups: impl Iterator<Item = Vec<[f64; 2]>>, c: usize) -> Vec<[f64; 2]> {
    groups.fold(vec![[0f64; 2]; c], |mut acc, grp| {
        for (a, [s, q]) in acc.iter_mut().zip(grp) {
            *a = [a[0] + s, a[1] + q];
        }
        acc
    })
}

/// For a stride-1 convolution with `pad < kernel`, the data gradient is a
/// convolution of `dy` with the flipped, transposed weights and padding
/// `kernel - 1 - pad`; this is its geometry. Used only where the input is
/// not much larger than the output, as the padded borders cost work.
fn transposed_geom(g: &ConvGeom) -> Option<ConvGeom> {
    let cheap = 4 * g.h * g.w <= 5 * g.ho * g.wo;
    (g.stride == 1 && g.kh == g.kw && g.pad < g.kh && g.n > 0 && cheap).then_some(ConvGeom {
        n: g.n,
        c: g.o,
        h: g.ho,
        w: g.wo,
        o: g.c,
        kh: g.kh,
        kw: g.kw,
        stride: 1,
        pad: g.kh - 1 - g.pad,
        ho: g.h,
        wo: g.w,
    })
}

/// `wf[c, o, i, j] = w[o, c, kh-1-i, kw-1-j]`.
fn flipped_weights(g: &ConvGeom, w: &[f32]) -> Vec<f32> {
    let kk = g.kh * g.kw;
    let mut wf = crate::buffers::uninit_f32(w.len());
    for o in 0..g.o {
        for c in 0..g.c {
            let src = &w[(o * g.c + c) * kk..][..kk];
            let dst = &mut wf[(c * g.o + o) * kk..][..kk];
            for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                *d = *s;
            }
        }
    }
    wf
}

/// Weight (and bias) gradients; also the data gradient through col2im when
/// `dx` is given.
fn weight_grads(
    g: &ConvGeom,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
    with_bias: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let (k, p) = (g.k(), g.p());
    let out_size = g.o * p;
    let gs = group_size(g.n);
    let groups = g.n.div_ceil(gs);
    let wt = Mat::tr(w, k, g.o);
    let gemm_parallel = groups < rayon::current_num_threads();

    // Each group: its dW partial, plus dx for its images.
    let mut dx_chunks: Vec<Option<&mut [f32]>> = match dx {
        Some(dx) => dx.chunks_mut(gs * g.in_size()).map(Some).collect(),
        None => (0..groups).map(|_| None).collect(),
    };
    let partials: Vec<Vec<f32>> = dx_chunks
        .par_iter_mut()
        .enumerate()
        .map(|(gi, dx_group)| {
            let mut dw = crate::buffers::uninit_f32(g.o * k);
            let mut col = Scratch::uninit(if g.is_pointwise() { 0 } else { k * p });
            let mut dcol = Scratch::uninit(if dx_group.is_some() && !g.is_pointwise() {
                k * p
            } else {
                0
            });
            let first = gi * gs;
            for n in first..(first + gs).min(g.n) {
                let x_n = &x[n * g.in_size()..(n + 1) * g.in_size()];
                let dy_n = &dy[n * out_size..(n + 1) * out_size];
                let cm: &[f32] = if g.is_pointwise() {
                    x_n
                } else {
                    im2col(g, x_n, &mut col);
                    &col
                };
                // dW^T += col [K, P] * dy_n^T [P, O] (faster than dW = dy_n col^T
                // when O is small).
                matmul(
                    Mat::rm(cm, k, p),
                    Mat::tr(dy_n, p, g.o),
                    &mut dw,
                    n > first,
                    gemm_parallel,
                );
                if let Some(dx_group) = dx_group.as_deref_mut() {
                    let local = n - first;
                    let dx_n = &mut dx_group[local * g.in_size()..(local + 1) * g.in_size()];
                    if g.is_pointwise() {
                        matmul(wt, Mat::rm(dy_n, g.o, p), dx_n, false, gemm_parallel);
                    } else {
                        matmul(wt, Mat::rm(dy_n, g.o, p), &mut dcol, false, gemm_parallel);
                        col2im(g, &dcol, dx_n);
                    }
                }
            }
            dw
        })
        .collect();
    finish_grads(g, dy, partials, with_bias)
}

/// Output pixels per product in [`weight_grad_partials`]: enough for a long
/// reduction, few enough that a row tile of the unfolded input stays in L1.
const WG_PIXELS: usize = 512;

/// Weight-gradient partials `dW^T [K, O]`, one per fixed group of images
/// (as in [`weight_grads`]), on our GEMM kernels of the level, with the bias gradient
/// as an extra row `K` (the product with a row of ones) when `with_bias`.
/// Images with at least [`WG_PIXELS`] output pixels reduce over them in
/// dot products `dW[o][k] += dy[o] . col[k]`; smaller ones unfold side by
/// side, a fixed number at a time, into `col [K, b*P]` with the output
/// gradient transposed into `dy^T [b*P, O]`, so that each product
/// `dW^T += col * dy^T` reduces over `b*P` pixels in registers.
fn weight_grad_partials(g: &ConvGeom, x: &[f32], dy: &[f32], with_bias: bool) -> Vec<Vec<f32>> {
    let (k, p, o) = (g.k(), g.p(), g.o);
    let k1 = k + with_bias as usize;
    let out_size = o * p;
    let gs = group_size(g.n);
    let groups = g.n.div_ceil(gs);
    let sb = WG_PIXELS.div_ceil(p.max(1)).min(gs);
    (0..groups)
        .into_par_iter()
        .map(|gi| {
            let mut dw = crate::buffers::uninit_f32(k1 * o);
            let (first, end) = (gi * gs, ((gi + 1) * gs).min(g.n));
            let mut col = Scratch::uninit(k1 * sb * p);
            col[k * sb * p..].fill(1.0);
            if sb == 1 {
                let mut dwo = vec![0f32; o * k1];
                for n in first..end {
                    im2col(g, &x[n * g.in_size()..(n + 1) * g.in_size()], &mut col);
                    let dy_n = &dy[n * out_size..(n + 1) * out_size];
                    let ok = gemm_nt_acc(o, k1, p, dy_n, p, &col, p, &mut dwo);
                    assert!(ok, "needs a vector GEMM kernel");
                }
                for (oo, row) in dwo.chunks_exact(k1).enumerate() {
                    for (kk, v) in row.iter().enumerate() {
                        dw[kk * o + oo] = *v;
                    }
                }
                return dw;
            }
            let mut dyt = Scratch::uninit(sb * p * o);
            let mut s = first;
            while s < end {
                let nb = sb.min(end - s);
                let t = nb * p;
                if nb < sb && with_bias {
                    // The ones row, at this sub-batch's row stride.
                    col[k * t..(k + 1) * t].fill(1.0);
                }
                for i in 0..nb {
                    let n = s + i;
                    im2col_ld(
                        g,
                        &x[n * g.in_size()..(n + 1) * g.in_size()],
                        &mut col[i * p..],
                        t,
                    );
                    let dy_n = &dy[n * out_size..(n + 1) * out_size];
                    let dst = &mut dyt[i * p * o..(i + 1) * p * o];
                    for (ch, row) in dy_n.chunks_exact(p).enumerate() {
                        for (px, v) in row.iter().enumerate() {
                            dst[px * o + ch] = *v;
                        }
                    }
                }
                let (a, b) = (&col[..k1 * t], &dyt[..t * o]);
                let ok = matmul_nn_acc(k1, o, t, a, t, b, o, &mut dw, o, s > first);
                assert!(ok, "needs a vector GEMM kernel");
                s += nb;
            }
            dw
        })
        .collect()
}

/// Sums the `[K (+1), O]` partials of [`weight_grad_partials`] in group
/// order into `dW [O, K]` and, with `with_bias`, `db` from row `K`.
fn finish_fused(
    g: &ConvGeom,
    partials: Vec<Vec<f32>>,
    with_bias: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let (k, o) = (g.k(), g.o);
    let mut sum = crate::buffers::zeros_f32((k + with_bias as usize) * o);
    for part in partials {
        sum.iter_mut().zip(&part).for_each(|(a, b)| *a += b);
        crate::buffers::recycle_f32(part);
    }
    let mut dw = crate::buffers::uninit_f32(o * k);
    for (oo, row) in dw.chunks_mut(k).enumerate() {
        for (kk, v) in row.iter_mut().enumerate() {
            *v = sum[kk * o + oo];
        }
    }
    let db = with_bias.then(|| sum[k * o..].to_vec());
    crate::buffers::recycle_f32(sum);
    (dw, db)
}

/// `dx = col2im(W^T dy)`, image by image, on our GEMM kernel of the level.
fn data_grad_col2im(g: &ConvGeom, w: &[f32], dy: &[f32], dx: &mut [f32]) {
    let (k, p, o) = (g.k(), g.p(), g.o);
    let mut wt = crate::buffers::uninit_f32(k * o);
    for (oo, row) in w.chunks_exact(k).enumerate() {
        for (kk, v) in row.iter().enumerate() {
            wt[kk * o + oo] = *v;
        }
    }
    dx.par_chunks_mut(g.in_size()).enumerate().for_each_init(
        || Scratch::uninit(if g.is_pointwise() { 0 } else { k * p }),
        |dcol, (n, dx_n)| {
            let dy_n = &dy[n * o * p..(n + 1) * o * p];
            let ok = if g.is_pointwise() {
                matmul_nn(k, p, o, &wt, dy_n, dx_n)
            } else {
                let ok = matmul_nn(k, p, o, &wt, dy_n, dcol);
                col2im(g, dcol, dx_n);
                ok
            };
            assert!(ok, "needs a vector GEMM kernel");
        },
    );
    crate::buffers::recycle_f32(wt);
}

/// Sums the `[K, O]` weight-gradient partials in group order into `[O, K]`
/// and adds the bias gradient.
fn finish_grads(
    g: &ConvGeom,
    dy: &[f32],
    partials: Vec<Vec<f32>>,
    with_bias: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let k = g.k();
    let mut dw = vec![0f32; g.o * k];
    for (o, row) in dw.chunks_mut(k).enumerate() {
        for (kk, v) in row.iter_mut().enumerate() {
            let mut acc = 0f32;
            for part in &partials {
                acc += part[kk * g.o + o];
            }
            *v = acc;
        }
    }
    partials.into_iter().for_each(crate::buffers::recycle_f32);
    (dw, with_bias.then(|| bias_grad(g, dy)))
}

/// `db[o] = sum of dy[., o, ., .]`: each image's plane summed in 16 lanes,
/// then the images in order.
fn bias_grad(g: &ConvGeom, dy: &[f32]) -> Vec<f32> {
    let p = g.p();
    let mut db = vec![0f32; g.o];
    db.par_iter_mut().enumerate().for_each(|(o, v)| {
        *v = dy.chunks(g.o * p).fold(0f32, |a, dy_n| {
            a + super::simd::lane_sum(&dy_n[o * p..(o + 1) * p])
        });
    });
    db
}

#[cfg(test)]
mod tests {
    use super::super::testing::{
        assert_close_scaled, data, geom, on_one_thread, reference_forward, reference_grads,
        reference_prologue, unfolded_source,
    };
    use super::*;

    #[test]
    fn transposed_data_gradient_matches_col2im() {
        for (kh, pad) in [(3, 1), (3, 2), (1, 0), (5, 2)] {
            let (n, c, h, w, o) = (3, 4, 7, 6, 5);
            let g = geom(n, c, o, h, w, kh, 1, pad);
            assert!(transposed_geom(&g).is_some());
            let (x, wt, dy) = (
                data(n * c * h * w, 1),
                data(o * c * kh * kh, 2),
                data(n * o * g.p(), 3),
            );
            let mut dx_a = vec![0f32; x.len()];
            let mut dx_b = vec![0f32; x.len()];
            let (dw_a, db_a) =
                conv2d_backward(&g, (&x, None), &wt, &dy, Some(&mut dx_a), None, true);
            let (dw_b, db_b) = weight_grads(&g, &x, &wt, &dy, Some(&mut dx_b), true);
            for (a, b) in dx_a.iter().zip(&dx_b) {
                assert!((a - b).abs() < 1e-4, "{a} vs {b} (k {kh} pad {pad})");
            }
            let close = |a: &[f32], b: &[f32]| {
                a.iter()
                    .zip(b)
                    .all(|(a, b)| (a - b).abs() <= 1e-4 * (1.0 + b.abs()))
            };
            assert!(close(&dw_a, &dw_b), "dw (k {kh} pad {pad})");
            assert!(
                close(&db_a.unwrap(), &db_b.unwrap()),
                "db (k {kh} pad {pad})"
            );
        }
    }

    /// The convolution of `pro(x)` with the prologue applied as it reads `x`
    /// (at a vector level) equals, bit for bit, the one of `pro(x)` written out;
    /// both equal the direct convolution of `max(x * scale + shift, 0)`.
    #[test]
    fn prologue_equals_its_written_out_input() {
        // Winograd (32x32, row, 16x16 and gather transforms), and im2col (strided).
        let cases = [
            (3, 16, 32, 1),
            (2, 8, 40, 1),
            (2, 16, 16, 1),
            (5, 8, 8, 1),
            (3, 8, 9, 2),
        ];
        for (n, c, h, stride) in cases {
            let g = geom(n, c, c, h, h, 3, stride, 1);
            let (x, wt, dy) = (
                data(n * c * h * h, 1),
                data(c * c * 9, 2),
                data(n * c * g.p(), 3),
            );
            let (scale, shift) = (data(c, 4), data(c, 5));
            let pro = Prologue {
                scale: &scale,
                shift: &shift,
            };
            let hx = materialize(&pro, &g, &x);
            assert_eq!(hx, reference_prologue(&g, &x, &scale, &shift));
            assert!(hx.contains(&0.0) && hx.iter().any(|&v| v > 0.0));
            let what = format!("{n} {c} {h} {stride}");
            let (mut y1, mut y2) = (vec![0f32; n * c * g.p()], vec![0f32; n * c * g.p()]);
            let ep = Epilogue::default();
            let s1 = conv2d_forward_stats(&g, (&x, Some(pro)), &wt, ep, &mut y1);
            let s2 = conv2d_forward_stats(&g, (&hx, None), &wt, ep, &mut y2);
            assert_eq!((&y1, &s1), (&y2, &s2), "forward {what}");
            let want = reference_forward(&g, &hx, &wt);
            assert_close_scaled(&y1, &want, 1e-5, &format!("forward {what}"));
            for (ch, (&m, &v)) in s1.0.iter().zip(&s1.1).enumerate() {
                let plane = |i: usize| &want[(i * c + ch) * g.p()..][..g.p()];
                let vals: Vec<f64> = (0..n).flat_map(plane).copied().collect();
                let wm = vals.iter().sum::<f64>() / vals.len() as f64;
                let wv = vals.iter().map(|v| (v - wm).powi(2)).sum::<f64>() / vals.len() as f64;
                let scale = 1.0 + wm.abs() + wv;
                assert!((m as f64 - wm).abs() < 1e-5 * scale, "mean {ch} {what}");
                assert!((v as f64 - wv).abs() < 1e-5 * scale, "variance {ch} {what}");
            }
            let (mut d1, mut d2) = (vec![0f32; x.len()], vec![0f32; x.len()]);
            let b1 = conv2d_backward(&g, (&x, Some(pro)), &wt, &dy, Some(&mut d1), None, false);
            let b2 = conv2d_backward(&g, (&hx, None), &wt, &dy, Some(&mut d2), None, false);
            let want = reference_grads(&g, &hx, &wt, &dy);
            assert_close_scaled(&d1, &want[0], 1e-5, &format!("dx {what}"));
            assert_close_scaled(&b1.0, &want[1], 1e-5, &format!("dw {what}"));
            assert_eq!((b1, d1), (b2, d2), "backward {what}");
        }
    }

    #[test]
    fn batch_norm_sums_from_the_data_gradient_match_a_separate_pass() {
        // Winograd data gradient (sums per image group), im2col (strided).
        for (n, c, h, stride) in [(5, 16, 16, 1), (3, 8, 9, 2)] {
            let g = geom(n, c, c, h, h, 3, stride, 1);
            let (x, wt, dy) = (
                data(n * c * h * h, 1),
                data(c * c * 9, 2),
                data(n * c * g.p(), 3),
            );
            let (scale, shift, mean) = (data(c, 4), data(c, 5), data(c, 6));
            let pro = Prologue {
                scale: &scale,
                shift: &shift,
            };
            let bn = BnBackward {
                mean: &mean,
                scale: &scale,
                shift: &shift,
            };
            let mut dx = vec![0f32; x.len()];
            let (dw, sums) = conv2d_backward_bn(&g, (&x, pro), &wt, Dy::Given(&dy), &mut dx, bn);
            let mut dx2 = vec![0f32; x.len()];
            let (dw2, _) =
                conv2d_backward(&g, (&x, Some(pro)), &wt, &dy, Some(&mut dx2), None, false);
            assert_eq!((&dw, &dx), (&dw2, &dx2));
            let geom = BnGeom { n, c, hw: h * h };
            let separate = group_grad_sums(geom, &dx2, &x, bn);
            // The gradients and sums written out: the direct gradients with
            // respect to `max(x * scale + shift, 0)`, then per channel
            // `[sum d, sum d (x - mean)]` of them where the ReLU passed.
            let hx = reference_prologue(&g, &x, &scale, &shift);
            let [rdx, rdw, _] = reference_grads(&g, &hx, &wt, &dy);
            assert_close_scaled(&dx, &rdx, 1e-5, "dx");
            assert_close_scaled(&dw, &rdw, 1e-5, "dw");
            let mut direct = vec![[0f64; 2]; c];
            let mut size = vec![0f64; c];
            for (i, (&xv, &d)) in x.iter().zip(&rdx).enumerate() {
                let ch = (i / (h * h)) % c;
                if xv * scale[ch] + shift[ch] > 0.0 {
                    let t = d * (xv as f64 - mean[ch] as f64);
                    direct[ch][0] += d;
                    direct[ch][1] += t;
                    size[ch] += d.abs() + t.abs();
                }
            }
            assert!(
                direct.iter().any(|s| s[0] != 0.0),
                "no channel passes the ReLU"
            );
            for ch in 0..c {
                let (got, sep, want) = (sums[ch], separate[ch], direct[ch]);
                for k in 0..2 {
                    assert!(
                        (got[k] - sep[k]).abs() <= 1e-9 * (1.0 + sep[k].abs()),
                        "{got:?} vs {sep:?}"
                    );
                    assert!(
                        (got[k] - want[k]).abs() <= 1e-5 * (1.0 + size[ch]),
                        "{got:?} vs {want:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn collected_gradient_is_added_to_dx() {
        // Transposed-convolution data gradient (3x3 pad 1), col2im (strided).
        for (k, stride, pad) in [(3, 1, 1), (3, 2, 1)] {
            let (n, c, h, o) = (4, 8, 8, 8);
            let g = geom(n, c, o, h, h, k, stride, pad);
            let (x, wt, dy) = (
                data(n * c * h * h, 1),
                data(o * c * k * k, 2),
                data(n * o * g.p(), 3),
            );
            let acc = data(x.len(), 4);
            let mut plain = vec![0f32; x.len()];
            let mut summed = vec![0f32; x.len()];
            let (dw_a, _) =
                conv2d_backward(&g, (&x, None), &wt, &dy, Some(&mut plain), None, false);
            let (dw_b, _) = conv2d_backward(
                &g,
                (&x, None),
                &wt,
                &dy,
                Some(&mut summed),
                Some(&acc),
                false,
            );
            assert_eq!(dw_a, dw_b);
            for ((s, p), a) in summed.iter().zip(&plain).zip(&acc) {
                assert_eq!(*s, p + a, "k {k} stride {stride}");
            }
        }
    }

    /// The vector unfolding (at the level `MACER_SIMD` allows) and the scalar loops against
    /// the definition: element `(row, col)` of the unfolded matrix is the
    /// input value it covers (0 in the padding), and folding back adds every
    /// element onto the input value it covers (in row-major order).
    #[test]
    fn vector_im2col_and_col2im_match_the_scalar_loops() {
        // (c, h, w, k, stride, pad): 3x3 and 1x1, odd sizes, rows wider
        // than one vector, windows past both edges.
        for (c, h, w, k, stride, pad) in [
            (3, 9, 9, 3, 2, 1),
            (2, 32, 32, 3, 2, 1),
            (2, 16, 40, 3, 2, 1),
            (3, 8, 7, 1, 2, 0),
            (2, 11, 35, 3, 1, 2),
        ] {
            let g = geom(1, c, 4, h, w, k, stride, pad);
            let x = data(c * h * w, 1);
            let (mut a, mut b) = (vec![f32::NAN; g.k() * g.p()], vec![f32::NAN; g.k() * g.p()]);
            im2col(&g, &x, &mut a);
            im2col_portable(&g, &x, &mut b, g.p());
            let what = format!("({c} {h} {w} {k} {stride} {pad})");
            let (rows, p) = (g.k(), g.p());
            let want: Vec<f32> = (0..rows * p)
                .map(|e| unfolded_source(&g, e / p, e % p).map_or(0.0, |i| x[i]))
                .collect();
            assert!(want.contains(&0.0) || pad == 0);
            assert_eq!(b, want, "im2col_portable {what}");
            assert_eq!(a, want, "im2col {what}");
            let cols = data(g.k() * g.p(), 2);
            let mut want = vec![0f32; x.len()];
            for (e, &v) in cols.iter().enumerate() {
                if let Some(i) = unfolded_source(&g, e / p, e % p) {
                    want[i] += v;
                }
            }
            let (mut a, mut b) = (vec![f32::NAN; x.len()], vec![f32::NAN; x.len()]);
            col2im(&g, &cols, &mut a);
            col2im_portable(&g, &cols, &mut b);
            assert_eq!(b, want, "col2im_portable {what}");
            assert_eq!(a, want, "col2im {what}");
        }
    }

    #[test]
    fn gradients_match_direct() {
        // (n, c, h, o, k, stride, pad): long images (dot products), short
        // ones in sub-batches with a ragged last one, strided, pointwise.
        for (n, c, h, o, k, stride, pad) in [
            (5, 1, 28, 20, 5, 1, 0),
            (37, 20, 12, 50, 5, 1, 0),
            (19, 6, 8, 7, 3, 1, 1),
            (9, 5, 9, 6, 3, 2, 1),
            (20, 8, 6, 4, 1, 1, 0),
            (3, 3, 33, 16, 3, 1, 1),
        ] {
            let g = geom(n, c, o, h, h, k, stride, pad);
            let (x, wt, dy) = (
                data(n * c * h * h, 1),
                data(o * c * k * k, 2),
                data(n * o * g.p(), 3),
            );
            let run = || {
                let mut dx = vec![f32::NAN; x.len()];
                let (dw, db) = conv2d_backward(&g, (&x, None), &wt, &dy, Some(&mut dx), None, true);
                let (dw2, db2) = conv2d_backward(&g, (&x, None), &wt, &dy, None, None, false);
                assert_eq!(dw, dw2);
                assert!(db2.is_none());
                (dx, dw, db.unwrap())
            };
            let (dx, dw, db) = run();
            let want = reference_grads(&g, &x, &wt, &dy);
            for (name, got, want) in [
                ("dx", &dx, &want[0]),
                ("dw", &dw, &want[1]),
                ("db", &db, &want[2]),
            ] {
                let what = format!("{name} ({n} {c} {h} {o} {k} {stride} {pad})");
                assert_close_scaled(got, want, 1e-5, &what);
            }
            // Bit-identical on one thread.
            assert!(on_one_thread(run) == (dx, dw, db));
        }
    }
}
