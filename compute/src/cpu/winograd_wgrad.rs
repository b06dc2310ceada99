//! Weight gradient of a stride-1 3x3 convolution through Winograd
//! F(4x4, 3x3): 36 products per channel pair for each 4x4 output tile
//! (F(2x2, 3x3) needs 64 for the same outputs, direct correlation 144).
//!
//! The forward is `Y = A^T [U ⊙ V] A` per tile, with `U = G g G^T` and
//! `V = B^T d B` (see [`super::winograd`]). Its adjoint: with the
//! output-gradient tiles `dM = A dY A^T`, `dU[xi]^T = V[xi] dM[xi]^T` summed
//! over all tiles (one GEMM `[C, tiles] x [tiles, O]` per transform point,
//! on the AVX-512 kernel of [`super::gemm512`] or the AVX2 one of
//! [`super::gemm256`];
//! `dM` is written tile-major so that this is a plain product, not a row of
//! dot products), then `dW = G^T dU G`, computed in
//! f64. Fixed runs of image groups give partial `dU`s, summed in order, so
//! the result does not depend on the thread count.

use rayon::prelude::*;

use super::gemm256;
use super::gemm512::matmul_nn_acc;
use super::norm::DeferredDx;
use super::simd::{AVX2, AVX512};
use super::winograd::{
    forward_group, grid, group_buffer_lens, images_per_group, input_transform, strides,
    weight_transform, GroupBuffers, POINTS,
};
use crate::buffers::Scratch;
use crate::geometry::{ConvGeom, Epilogue, Prologue};

/// Row stride of the tile-major `dM^T[xi][t][o]`, and the stride of one
/// point's block of `tiles` rows.
fn grad_strides(g: &ConvGeom, tiles: usize) -> (usize, usize) {
    let os = g.o.next_multiple_of(16);
    (os, tiles * os + 16)
}

/// `dM^T[xi][t][o]` for the tiles of `nb` images of `dy`, `t` counting
/// tiles image by image, row by row (as the input transform counts them).
fn grad_transform(
    level: u8,
    g: &ConvGeom,
    dy: &[f32],
    nb: usize,
    m: &mut [f32],
    (os, blk): (usize, usize),
) {
    let (th, tw) = grid(g);
    let t_all = nb * th * tw;
    assert!(dy.len() >= nb * g.o * g.p() && nb * g.o * g.p() <= i32::MAX as usize);
    assert!(os >= g.o.next_multiple_of(16) && blk >= t_all * os && m.len() >= POINTS * blk);
    assert!((AVX2..=AVX512).contains(&level) && level <= super::simd::detected_level());
    // SAFETY: the CPU has the level's features (checked above); gathers
    // read only tile elements inside the image, of channels below `g.o`,
    // and the stores (16 channels from a multiple of 16) stay within the
    // row stride `os` of the `t_all` rows checked above.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        // Planes of 4 KiB or more put a gather's 16 lanes into one L1 set;
        // there, loading rows and transposing them is faster.
        let (dy, m) = (dy.as_ptr(), m.as_mut_ptr());
        let rows = g.wo.is_multiple_of(16) && g.o.is_multiple_of(16) && g.p() * 4 >= 4096;
        match (level >= AVX512, rows) {
            (true, true) => x86::avx512::grad_transform_rows(g, dy, nb, m, os, blk),
            (true, false) => x86::avx512::grad_transform(g, dy, nb, m, os, blk),
            (false, true) => x86::avx2::grad_transform_rows(g, dy, nb, m, os, blk),
            (false, false) => x86::avx2::grad_transform(g, dy, nb, m, os, blk),
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    crate::cpu::vec16::kernels_at_each_level!(pub(super), "winograd_wgrad_kernels.rs");
}

/// `dW = G^T dU G` for each channel pair, in f64, with the `G` (6 x 3) of
/// [`super::winograd`]'s weight transform; `du` holds `dU[xi]^T [C, O]`.
fn fold_points(g: &ConvGeom, du: &[f32]) -> Vec<f32> {
    const G: [[f64; 3]; 6] = [
        [0.25, 0.0, 0.0],
        [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
        [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
        [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
        [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
        [0.0, 0.0, 1.0],
    ];
    let uo = g.o * g.c;
    let mut dw = crate::buffers::uninit_f32(uo * 9);
    dw.par_chunks_mut(9 * g.c)
        .enumerate()
        .for_each(|(o, dw_o)| {
            for (c, dw_oc) in dw_o.chunks_exact_mut(9).enumerate() {
                let at = c * g.o + o;
                // t = dU G (6 x 3), then G^T t.
                let mut t = [[0f64; 3]; 6];
                for (i, ti) in t.iter_mut().enumerate() {
                    for (q, tq) in ti.iter_mut().enumerate() {
                        *tq = (0..6)
                            .map(|j| du[(i * 6 + j) * uo + at] as f64 * G[j][q])
                            .sum();
                    }
                }
                for p in 0..3 {
                    for q in 0..3 {
                        let v: f64 = (0..6).map(|i| G[i][p] * t[i][q]).sum();
                        dw_oc[p * 3 + q] = v as f32;
                    }
                }
            }
        });
    dw
}

/// Image groups per weight-gradient partial: a function of the group count
/// only, so partials are summed in an order fixed by the shape.
fn groups_per_partial(groups: usize) -> usize {
    groups.div_ceil(16).max(1)
}

/// Lengths of the scratch `(v, m)` for one image group of `imgs` images.
fn buffer_lens(g: &ConvGeom, imgs: usize) -> (usize, usize) {
    let (th, tw) = grid(g);
    let t = imgs * th * tw;
    (POINTS * strides(t, g.c).1, POINTS * grad_strides(g, t).1)
}

/// Adds one image group's weight-gradient products into `du` (`dU^T[xi]`,
/// `[C, O]` per point), or writes them there for a partial's `first` group
/// (so that `du` need not be zeroed first; the same sums, bit for bit).
fn accumulate_group(
    level: u8,
    g: &ConvGeom,
    (x_grp, pro): (&[f32], Option<Prologue>),
    dy_grp: &[f32],
    (du, first): (&mut [f32], bool),
    bufs: &mut GroupBuffers,
) {
    let (th, tw) = grid(g);
    let imgs = dy_grp.len() / (g.o * g.p());
    let t_all = imgs * th * tw;
    let uo = g.o * g.c;
    let (sv, sm) = (strides(t_all, g.c), grad_strides(g, t_all));
    let (v, m) = (&mut bufs.v[..POINTS * sv.1], &mut bufs.m[..POINTS * sm.1]);
    input_transform(level, g, x_grp, pro, imgs, v, sv);
    grad_transform(level, g, dy_grp, imgs, m, sm);
    for xi in 0..POINTS {
        let (v_xi, m_xi) = (
            &v[xi * sv.1..][..g.c * sv.0],
            &m[xi * sm.1..][..t_all * sm.0],
        );
        let du_xi = &mut du[xi * uo..][..uo];
        let ok = if level >= AVX512 {
            matmul_nn_acc(g.c, g.o, t_all, v_xi, sv.0, m_xi, sm.0, du_xi, g.o, !first)
        } else {
            gemm256::matmul_nn_acc(g.c, g.o, t_all, v_xi, sv.0, m_xi, sm.0, du_xi, g.o, !first)
        };
        assert!(ok, "the Winograd path needs the GEMM kernel of its level");
    }
}

/// Weight gradient `dW [O, C, 3, 3]` of a geometry where
/// [`super::winograd::applies`] holds.
pub fn weight_grad(g: &ConvGeom, (x, pro): (&[f32], Option<Prologue>), dy: &[f32]) -> Vec<f32> {
    weight_grad_at(super::simd::level(), g, (x, pro), dy)
}

/// [`weight_grad`] with the kernels of `level` ([`AVX2`] or [`AVX512`],
/// which this CPU must have).
fn weight_grad_at(
    level: u8,
    g: &ConvGeom,
    (x, pro): (&[f32], Option<Prologue>),
    dy: &[f32],
) -> Vec<f32> {
    let nb = images_per_group(g);
    let (in_size, out_size) = (g.c * g.h * g.w, g.o * g.p());
    let groups = g.n.div_ceil(nb);
    let per = groups_per_partial(groups);
    let partials: Vec<Vec<f32>> = (0..groups.div_ceil(per))
        .into_par_iter()
        .map(|pi| {
            let mut du = crate::buffers::uninit_f32(POINTS * g.o * g.c);
            let mut bufs = GroupBuffers::new(buffer_lens(g, nb));
            for gi in pi * per..((pi + 1) * per).min(groups) {
                let first = gi * nb;
                let imgs = (g.n - first).min(nb);
                let x_grp = &x[first * in_size..][..imgs * in_size];
                let dy_grp = &dy[first * out_size..][..imgs * out_size];
                let into = (&mut du[..], gi == pi * per);
                accumulate_group(level, g, (x_grp, pro), dy_grp, into, &mut bufs);
            }
            du
        })
        .collect();
    fold_partials(g, partials)
}

/// Whether [`backward`] can run a geometry: its data gradient (the
/// convolution `tg`, see [`backward`]) groups images as its weight gradient.
pub fn fuses(g: &ConvGeom, tg: &ConvGeom) -> bool {
    super::winograd::applies(g)
        && super::winograd::applies(tg)
        && images_per_group(g) == images_per_group(tg)
}

/// The output gradient of a convolution backward: given, or the second
/// pass of a batch norm backward, computed image group by image group as
/// the backward reads it (and never written out whole).
#[derive(Clone, Copy)]
pub enum Dy<'a> {
    Given(&'a [f32]),
    Deferred(DeferredDx<'a>),
}

impl Dy<'_> {
    fn len(&self) -> usize {
        match self {
            Dy::Given(d) => d.len(),
            Dy::Deferred(d) => d.x.len(),
        }
    }
}

/// Both gradients of a convolution where [`fuses`] holds, image group by
/// image group, so that each group of `dy` and `x` is read from memory once
/// for both: `dx = conv_tg(dy, wf)` (the data gradient as a convolution of
/// geometry `tg` with the flipped weights `wf`), plus `dx_acc` where given;
/// `after(first image, group of dx)` runs on each group of `dx` as soon as
/// it is written (and may update it). Returns `dW [O, C, 3, 3]` and the results of `after`.
/// Bit-identical to the data gradient through [`super::winograd::forward`]
/// and then [`weight_grad`] (of `dy` written out, where it is deferred).
#[allow(clippy::too_many_arguments)]
pub fn backward<R: Send>(
    (g, tg): (&ConvGeom, &ConvGeom),
    (x, pro): (&[f32], Option<Prologue>),
    wf: &[f32],
    dy: Dy,
    (dx, dx_acc): (&mut [f32], Option<&[f32]>),
    after: impl Fn(usize, &mut [f32]) -> R + Sync,
) -> (Vec<f32>, Vec<R>) {
    assert!(fuses(g, tg) && tg.c == g.o && tg.o == g.c && tg.n == g.n);
    assert!(dx.len() == x.len() && dx_acc.is_none_or(|a| a.len() == dx.len()));
    assert!(dy.len() == g.n * g.o * g.p());
    if let Dy::Deferred(d) = dy {
        assert!(d.g.c == g.o && d.g.hw == g.p() && d.dy.len() == d.x.len());
        assert!(
            d.coef.len() >= g.o && d.mask.is_none_or(|(a, b)| a.len() >= g.o && b.len() >= g.o)
        );
    }
    let level = super::simd::level();
    let nb = images_per_group(g);
    let (in_size, out_size) = (g.c * g.h * g.w, g.o * g.p());
    let groups = g.n.div_ceil(nb);
    let per = groups_per_partial(groups);
    let u = weight_transform(tg, wf);
    let ep = Epilogue {
        residual: dx_acc,
        ..Default::default()
    };
    let (wv, wm) = buffer_lens(g, nb);
    let (dv, dm) = group_buffer_lens(tg, nb);
    let parts: Vec<(Vec<f32>, Vec<R>)> = dx
        .par_chunks_mut(per * nb * in_size)
        .enumerate()
        .map(|(pi, dx_part)| {
            let mut du = crate::buffers::uninit_f32(POINTS * g.o * g.c);
            let mut bufs = GroupBuffers::new((wv.max(dv), wm.max(dm)));
            let mut results = Vec::new();
            let mut dy_own = match dy {
                Dy::Given(_) => None,
                Dy::Deferred(_) => Some(Scratch::uninit(nb * out_size)),
            };
            for (k, dx_grp) in dx_part.chunks_mut(nb * in_size).enumerate() {
                let first = (pi * per + k) * nb;
                let imgs = dx_grp.len() / in_size;
                let dy_grp: &[f32] = match (dy, dy_own.as_deref_mut()) {
                    (Dy::Given(d), _) => &d[first * out_size..][..imgs * out_size],
                    (Dy::Deferred(d), Some(own)) => {
                        let own = &mut own[..imgs * out_size];
                        d.images(first, own);
                        own
                    }
                    (Dy::Deferred(_), None) => unreachable!("scratch made above"),
                };
                let res = ep.residual_at(first * in_size, dx_grp.len());
                forward_group(level, tg, (dy_grp, None), &u, (ep, res), dx_grp, &mut bufs);
                results.push(after(first, dx_grp));
                let x_grp = &x[first * in_size..][..imgs * in_size];
                accumulate_group(level, g, (x_grp, pro), dy_grp, (&mut du, k == 0), &mut bufs);
            }
            (du, results)
        })
        .collect();
    crate::buffers::recycle_f32(u);
    let (partials, results): (Vec<Vec<f32>>, Vec<Vec<R>>) = parts.into_iter().unzip();
    (
        fold_partials(g, partials),
        results.into_iter().flatten().collect(),
    )
}

/// The partial `dU^T`s summed in order, element by element (in parallel),
/// then folded into `dW`.
fn fold_partials(g: &ConvGeom, partials: Vec<Vec<f32>>) -> Vec<f32> {
    let mut parts = partials.into_iter();
    let Some(mut du) = parts.next() else {
        return crate::buffers::zeros_f32(g.o * g.c * 9);
    };
    let rest: Vec<Vec<f32>> = parts.collect();
    du.par_chunks_mut(crate::cpu::CHUNK)
        .enumerate()
        .for_each(|(k, chunk)| {
            for part in &rest {
                let src = &part[k * crate::cpu::CHUNK..][..chunk.len()];
                chunk.iter_mut().zip(src).for_each(|(a, b)| *a += b);
            }
        });
    rest.into_iter().for_each(crate::buffers::recycle_f32);
    let dw = fold_points(g, &du);
    crate::buffers::recycle_f32(du);
    dw
}

#[cfg(test)]
mod tests {
    use super::super::testing::{data, geom, on_one_thread, reference_grads, require_avx512};
    use super::*;

    #[test]
    #[cfg_attr(
        not(build_cpu_avx512),
        ignore = "needs AVX-512 (F and VL), which this CPU lacks"
    )]
    fn avx512_matches_direct_weight_gradient() {
        require_avx512();
        matches_direct_weight_gradient(AVX512);
    }

    /// The AVX2 kernels (run wherever the CPU has AVX2, whatever the level
    /// the other kernels dispatch to).
    #[test]
    fn avx2_kernels_match_direct_weight_gradient() {
        if !super::super::testing::cpu_has_avx2() {
            return;
        }
        matches_direct_weight_gradient(AVX2);
    }

    /// [`weight_grad_at`] with the kernels of `level` against the direct
    /// weight gradient, and the same on one thread.
    fn matches_direct_weight_gradient(level: u8) {
        // (n, c, o, h, w, pad): ragged tiles, paddings 0 to 2, narrow and
        // wide images, a short last image group, ResNet-110's stage shapes.
        for (n, c, o, h, w, pad) in [
            (3, 8, 9, 7, 6, 1),
            (5, 9, 8, 5, 9, 0),
            (1, 8, 12, 4, 3, 2),
            (70, 8, 8, 4, 4, 1),
            (2, 8, 10, 5, 71, 1),
            (7, 16, 16, 13, 11, 2),
            (40, 12, 16, 9, 9, 1),
            (6, 16, 16, 32, 32, 1),
            (9, 32, 32, 16, 16, 1),
            (20, 64, 64, 8, 8, 1),
            (3, 8, 8, 9, 32, 1),
            (2, 8, 9, 10, 32, 0),
        ] {
            let g = geom(n, c, o, h, w, 3, 1, pad);
            let (x, dy) = (data(n * c * h * w, 4), data(n * o * g.p(), 5));
            let dw = weight_grad_at(level, &g, (&x, None), &dy);
            let r = &reference_grads(&g, &x, &vec![0f32; o * c * 9], &dy)[1];
            let scale = r.iter().fold(1f64, |m, v| m.max(v.abs()));
            let worst = dw
                .iter()
                .zip(r)
                .map(|(a, e)| (*a as f64 - e).abs() / scale)
                .fold(0f64, f64::max);
            let what = format!("{n} {c} {o} {h} {w} {pad}");
            assert!(worst < 1e-5, "{what}: relative error {worst}");
            assert_eq!(
                on_one_thread(|| weight_grad_at(level, &g, (&x, None), &dy)),
                dw,
                "{what}"
            );
        }
    }
}
