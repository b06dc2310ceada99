//! 2-D convolution as im2col + GEMM, one image per task.
//!
//! Forward: `y[n] = W[O, K] * col(x[n])[K, P]` with `K = C*kh*kw`, `P = Ho*Wo`
//! (the AVX-512 kernel in [`super::gemm512`] where available); stride-1 3x3
//! convolutions with enough channels go through Winograd F(2x2, 3x3) in
//! [`super::winograd`] instead.
//! Backward data: for stride 1, a forward convolution of `dy` with the
//! flipped, transposed weights; otherwise `dx[n] = col2im(W^T * dy[n])`.
//! Backward weight: `dW^T = sum_n col(x[n]) * dy[n]^T`, summed per fixed image
//! group and then across groups in order, so the result never depends on the
//! thread count (Winograd's own weight gradient where it serves the forward).

use rayon::prelude::*;

use super::gemm::{matmul, Mat};
use super::gemm512::matmul_nn;
use crate::buffers::Scratch;

/// Geometry of one convolution.
#[derive(Clone, Copy, Debug)]
pub struct ConvGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub ho: usize,
    pub wo: usize,
}

impl ConvGeom {
    pub fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }
    pub fn p(&self) -> usize {
        self.ho * self.wo
    }
    fn in_size(&self) -> usize {
        self.c * self.h * self.w
    }
    /// A 1x1, stride-1, unpadded convolution reads the input as its own col.
    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad == 0
    }
}

/// Unfolds one image `x [C, H, W]` into `col [K, P]`.
fn im2col(g: &ConvGeom, x: &[f32], col: &mut [f32]) {
    let (s, pad) = (g.stride as isize, g.pad as isize);
    let p = g.p();
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &mut col[((c * g.kh + i) * g.kw + j) * p..][..p];
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
                        for (ox, v) in out.iter_mut().enumerate() {
                            let ix = ox as isize * s - pad + j as isize;
                            *v = if ix >= 0 && ix < g.w as isize {
                                src[ix as usize]
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
        }
    }
}

/// Folds `col [K, P]` back into `dx [C, H, W]`, adding overlapping windows.
fn col2im(g: &ConvGeom, col: &[f32], dx: &mut [f32]) {
    dx.fill(0.0);
    let (s, pad) = (g.stride as isize, g.pad as isize);
    let p = g.p();
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

/// `y = conv(x, w) + b`.
pub fn conv2d_forward(g: &ConvGeom, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
    if super::winograd::applies(g) {
        return super::winograd::forward(g, x, w, b, y);
    }
    im2col_forward(g, x, w, b, y);
}

/// `y = conv(x, w) + b` through im2col and GEMM.
pub(crate) fn im2col_forward(g: &ConvGeom, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
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
            if let Some(b) = b {
                for (o, row) in y_n.chunks_mut(p).enumerate() {
                    row.iter_mut().for_each(|v| *v += b[o]);
                }
            }
        },
    );
}

/// Images per group in the weight-gradient reduction: a function of the
/// batch size only, so the summation order is fixed.
fn group_size(n: usize) -> usize {
    n.div_ceil(16).max(1)
}

/// Gradients of the convolution. Returns `(dw, db)`; writes `dx` if given.
pub fn conv2d_backward(
    g: &ConvGeom,
    x: &[f32],
    w: &[f32],
    dy: &[f32],
    dx: Option<&mut [f32]>,
    with_bias: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let tg = transposed_geom(g);
    if super::winograd::weight_grad_applies(g) && (dx.is_none() || tg.is_some()) {
        if let (Some(dx), Some(tg)) = (dx, tg) {
            conv2d_forward(&tg, dy, &flipped_weights(g, w), None, dx);
        }
        let dw = super::winograd::weight_grad(g, x, dy);
        return (dw, with_bias.then(|| bias_grad(g, dy)));
    }
    match (dx, tg) {
        (Some(dx), Some(tg)) => {
            let wf = flipped_weights(g, w);
            // The data gradient is itself a convolution.
            conv2d_forward(&tg, dy, &wf, None, dx);
            weight_grads(g, x, w, dy, None, with_bias)
        }
        (dx, _) => weight_grads(g, x, w, dy, dx, with_bias),
    }
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
    let mut wf = vec![0f32; w.len()];
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

/// `db[o] = sum of dy[., o, ., .]`, image by image in order.
fn bias_grad(g: &ConvGeom, dy: &[f32]) -> Vec<f32> {
    let p = g.p();
    let mut db = vec![0f32; g.o];
    for dy_n in dy.chunks(g.o * p) {
        for (o, row) in dy_n.chunks(p).enumerate() {
            db[o] += row.iter().sum::<f32>();
        }
    }
    db
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0) - 1.0)
            .collect()
    }

    #[test]
    fn transposed_data_gradient_matches_col2im() {
        for (kh, pad) in [(3, 1), (3, 2), (1, 0), (5, 2)] {
            let (n, c, h, w, o) = (3, 4, 7, 6, 5);
            let (ho, wo) = (h + 2 * pad - kh + 1, w + 2 * pad - kh + 1);
            let g = ConvGeom {
                n,
                c,
                h,
                w,
                o,
                kh,
                kw: kh,
                stride: 1,
                pad,
                ho,
                wo,
            };
            assert!(transposed_geom(&g).is_some());
            let (x, wt, dy) = (
                data(n * c * h * w, 1),
                data(o * c * kh * kh, 2),
                data(n * o * ho * wo, 3),
            );
            let mut dx_a = vec![0f32; x.len()];
            let mut dx_b = vec![0f32; x.len()];
            let (dw_a, db_a) = conv2d_backward(&g, &x, &wt, &dy, Some(&mut dx_a), true);
            let (dw_b, db_b) = weight_grads(&g, &x, &wt, &dy, Some(&mut dx_b), true);
            for (a, b) in dx_a.iter().zip(&dx_b) {
                assert!((a - b).abs() < 1e-4, "{a} vs {b} (k {kh} pad {pad})");
            }
            assert_eq!(dw_a, dw_b);
            assert_eq!(db_a, db_b);
        }
    }
}
