//! Batch normalisation over (N, H, W) for each channel of NCHW tensors.
//! Per-channel sums use 16 f32 lanes over blocks of at most 256 elements,
//! folded into f64 in a fixed order, so statistics are accurate, vectorised
//! and reproducible.

use rayon::prelude::*;

/// Shape of a normalisation: `n` images, `c` channels, `hw` pixels each.
#[derive(Clone, Copy)]
pub struct BnGeom {
    pub n: usize,
    pub c: usize,
    pub hw: usize,
}

impl BnGeom {
    fn count(&self) -> usize {
        self.n * self.hw
    }
    fn plane<'a>(&self, x: &'a [f32], n: usize, c: usize) -> &'a [f32] {
        &x[(n * self.c + c) * self.hw..][..self.hw]
    }
}

use super::simd;

/// Channel `c`'s shift `k` (its first element, so that the deviations do
/// not cancel) and `[sum (x - k), sum (x - k)^2]`; `g.count()` must be > 0.
fn shifted_channel_sums(g: BnGeom, x: &[f32], c: usize) -> (f32, [f64; 2]) {
    let k = g.plane(x, 0, c)[0];
    let mut lanes = [[0f64; 16]; 2];
    for n in 0..g.n {
        simd::shifted_sums(g.plane(x, n, c), k, &mut lanes);
    }
    (k, simd::lane_total(&lanes))
}

/// Batch mean and biased variance of each channel (one pass, shifted by the
/// channel's first element so the variance does not cancel).
pub fn channel_stats(g: BnGeom, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let stats: Vec<(f32, f32)> = (0..g.c)
        .into_par_iter()
        .map(|c| {
            if g.count() == 0 {
                return (f32::NAN, f32::NAN);
            }
            let (k, [s, q]) = shifted_channel_sums(g, x, c);
            let cnt = g.count() as f64;
            let m1 = s / cnt;
            let var = (q / cnt - m1 * m1).max(0.0);
            ((k as f64 + m1) as f32, var as f32)
        })
        .collect();
    stats.into_iter().unzip()
}

/// Count, mean and sum of squared deviations of one channel over part of a
/// batch: partial statistics that merge exactly (Chan et al.), so a
/// convolution can take them from each image group's output while it is
/// still in cache.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Moments {
    pub n: f64,
    pub mean: f64,
    pub m2: f64,
}

impl Moments {
    const EMPTY: Moments = Moments {
        n: 0.0,
        mean: 0.0,
        m2: 0.0,
    };

    /// `self` then `other`, as if their elements were one set.
    pub fn merge(self, other: Moments) -> Moments {
        let n = self.n + other.n;
        if n == 0.0 {
            return self;
        }
        let delta = other.mean - self.mean;
        Moments {
            n,
            mean: self.mean + delta * other.n / n,
            m2: self.m2 + other.m2 + delta * delta * self.n * other.n / n,
        }
    }
}

/// Per-channel [`Moments`] of `x` (`g.n` images), from shifted sums.
pub fn group_moments(g: BnGeom, x: &[f32]) -> Vec<Moments> {
    (0..g.c)
        .map(|c| {
            if g.count() == 0 {
                return Moments::EMPTY;
            }
            let (k, [s, q]) = shifted_channel_sums(g, x, c);
            let n = g.count() as f64;
            Moments {
                n,
                mean: k as f64 + s / n,
                m2: (q - s * s / n).max(0.0),
            }
        })
        .collect()
}

/// What a training-mode batch norm + ReLU backward needs of its forward:
/// the batch mean, and the ReLU mask's `max(z * scale + shift, 0)`.
#[derive(Clone, Copy)]
pub struct BnBackward<'a> {
    pub mean: &'a [f32],
    pub scale: &'a [f32],
    pub shift: &'a [f32],
}

/// Per channel `[sum d, sum d (z - mean)]` over `g.n` images, `d = dy`
/// where `z * scale + shift > 0` (else 0): the first pass of the batch
/// norm + ReLU backward, for part of a batch.
pub fn group_grad_sums(g: BnGeom, dy: &[f32], z: &[f32], bn: BnBackward) -> Vec<[f64; 2]> {
    (0..g.c)
        .map(|c| {
            let mut lanes = [[0f64; 16]; 2];
            let mask = (bn.scale[c], bn.shift[c]);
            for n in 0..g.n {
                let (dp, zp) = (g.plane(dy, n, c), g.plane(z, n, c));
                simd::grad_sums_relu(dp, zp, bn.mean[c], mask, &mut lanes);
            }
            simd::lane_total(&lanes)
        })
        .collect()
}

/// Batch mean and biased variance of each of `c` channels from the
/// per-group moments, merged in group order.
pub fn merge_moments(groups: &[Vec<Moments>], c: usize) -> (Vec<f32>, Vec<f32>) {
    (0..c)
        .map(|ch| {
            let m = groups
                .iter()
                .fold(Moments::EMPTY, |acc, grp| acc.merge(grp[ch]));
            if m.n == 0.0 {
                return (f32::NAN, f32::NAN);
            }
            (m.mean as f32, (m.m2 / m.n) as f32)
        })
        .unzip()
}

/// `y = x * scale[c] + shift[c]`, the form both train and eval reduce to;
/// with `relu`, `y = max(x * scale[c] + shift[c], 0)` in the same pass.
pub fn scale_shift(g: BnGeom, x: &[f32], scale: &[f32], shift: &[f32], y: &mut [f32], relu: bool) {
    y.par_chunks_mut(g.hw)
        .zip(x.par_chunks(g.hw))
        .enumerate()
        .with_min_len(planes_per_task(g.hw))
        .for_each(|(i, (yp, xp))| {
            let c = i % g.c;
            let (a, b) = (scale[c], shift[c]);
            if relu {
                simd::scale_add_relu(yp, xp, a, b);
            } else {
                simd::scale_add(yp, xp, a, b);
            }
        });
}

/// `y = max(x * scale[c] + shift[c] + res, 0)`: [`scale_shift`] then a
/// residual sum and ReLU, in one pass (`res` laid out like `x`).
pub fn scale_shift_add_relu(
    g: BnGeom,
    x: &[f32],
    res: &[f32],
    scale: &[f32],
    shift: &[f32],
    y: &mut [f32],
) {
    assert!(res.len() == x.len());
    y.par_chunks_mut(g.hw)
        .zip(x.par_chunks(g.hw).zip(res.par_chunks(g.hw)))
        .enumerate()
        .with_min_len(planes_per_task(g.hw))
        .for_each(|(i, (yp, (xp, rp)))| {
            let c = i % g.c;
            simd::scale_add_res_relu(yp, xp, rp, scale[c], shift[c]);
        });
}

/// The per-channel `(scale, shift)` of the training-mode transform from its
/// batch statistics: the forward and the fused backward both compute them
/// this way, so the backward's ReLU mask is exactly the forward's.
pub fn train_affine(
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    invstd: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = gamma.iter().zip(invstd).map(|(g, s)| g * s).collect();
    let shift: Vec<f32> = (0..scale.len())
        .map(|c| beta[c] - mean[c] * scale[c])
        .collect();
    (scale, shift)
}

/// `1 / sqrt(var + eps)` per channel.
pub fn invstd(var: &[f32], eps: f32) -> Vec<f32> {
    var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect()
}

/// The per-channel `(scale, shift)` of the evaluation-mode transform:
/// `scale = gamma / sqrt(running_var + eps)`, `shift = beta - running_mean * scale`.
pub fn eval_affine(
    gamma: &[f32],
    beta: &[f32],
    running_mean: &[f32],
    running_var: &[f32],
    eps: f32,
) -> (Vec<f32>, Vec<f32>) {
    let scale: Vec<f32> = gamma
        .iter()
        .zip(running_var)
        .map(|(g, v)| g / (v + eps).sqrt())
        .collect();
    let shift = (0..scale.len())
        .map(|c| beta[c] - running_mean[c] * scale[c])
        .collect();
    (scale, shift)
}

/// The factor that turns the biased variance of `count` elements into the
/// unbiased estimate the running variance takes (PyTorch's); 1 for one element.
pub fn unbias(count: f32) -> f32 {
    if count > 1.0 {
        count / (count - 1.0)
    } else {
        1.0
    }
}

/// The running statistics move towards the batch's `mean` and biased `var`
/// (of `count` elements per channel) by `momentum`.
pub fn update_running(
    (running_mean, running_var): (&mut [f32], &mut [f32]),
    mean: &[f32],
    var: &[f32],
    count: f32,
    momentum: f32,
) {
    let unbias = unbias(count);
    for c in 0..mean.len() {
        running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * mean[c];
        running_var[c] = (1.0 - momentum) * running_var[c] + momentum * var[c] * unbias;
    }
}

/// Enough planes per task that tasks cover a few thousand elements.
fn planes_per_task(hw: usize) -> usize {
    (4096 / hw.max(1)).max(1)
}

/// Gradients of the training-mode transform given the saved batch mean and
/// inverse standard deviation. Returns `(dx, dgamma, dbeta)`. With
/// `relu_shift = Some(beta)` the transform was followed by a ReLU: `dy` is
/// taken as zero wherever `x * scale + shift <= 0`, the mask recomputed from
/// `x` exactly as the forward computed its output. `given`, per channel
/// `[sum d, sum d (x - mean)]` of the masked `dy` (as a convolution's data
/// gradient can take them, see `conv2d_backward_bn`), replaces the first pass.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    g: BnGeom,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    mean: &[f32],
    invstd: &[f32],
    relu_shift: Option<&[f32]>,
    given: Option<&[[f64; 2]]>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mask = relu_shift.map(|beta| train_affine(gamma, beta, mean, invstd));
    let mask_of = |c: usize| mask.as_ref().map(|(a, b)| (a[c], b[c]));
    let sums: Vec<(f32, f32)> = (0..g.c)
        .into_par_iter()
        .map(|c| {
            if let Some(given) = given {
                let [s, q] = given[c];
                return (s as f32, (q * invstd[c] as f64) as f32);
            }
            let m = mean[c];
            let mut lanes = [[0f64; 16]; 2];
            for n in 0..g.n {
                let (dp, xp) = (g.plane(dy, n, c), g.plane(x, n, c));
                match mask_of(c) {
                    Some(mk) => simd::grad_sums_relu(dp, xp, m, mk, &mut lanes),
                    None => simd::grad_sums(dp, xp, m, &mut lanes),
                }
            }
            let acc = simd::lane_total(&lanes);
            (acc[0] as f32, (acc[1] * invstd[c] as f64) as f32)
        })
        .collect();
    let (dbeta, dgamma): (Vec<f32>, Vec<f32>) = sums.into_iter().unzip();
    let coef = dx_coefficients(g, gamma, mean, invstd, (&dbeta, &dgamma));
    let dx = dx_pass(g, x, dy, &coef, mask_of);
    (dx, dgamma, dbeta)
}

/// `dx = a dy + b x + c` per channel (`coef`), with `dy` taken as 0 behind
/// the ReLU mask `mask_of(c)` where there is one: the second pass of the
/// backward.
fn dx_pass(
    g: BnGeom,
    x: &[f32],
    dy: &[f32],
    coef: &[[f32; 3]],
    mask_of: impl Fn(usize) -> Option<(f32, f32)> + Sync,
) -> Vec<f32> {
    let mut dx = crate::buffers::uninit_f32(x.len());
    dx.par_chunks_mut(g.hw)
        .enumerate()
        .with_min_len(planes_per_task(g.hw))
        .for_each(|(i, dxp)| {
            let (n, c) = (i / g.c, i % g.c);
            dx_plane(
                dxp,
                (g.plane(dy, n, c), g.plane(x, n, c)),
                coef[c],
                mask_of(c),
            );
        });
    dx
}

/// One plane of [`dx_pass`]: `dx = a dy + b x + c`, `dy` taken as 0 behind
/// the ReLU mask `mask` where there is one.
fn dx_plane(dx: &mut [f32], (dy, x): (&[f32], &[f32]), coef: [f32; 3], mask: Option<(f32, f32)>) {
    let [a, b, c] = coef;
    match mask {
        Some(mk) => simd::lin2_relu(dx, dy, x, a, b, c, mk),
        None => simd::lin2(dx, dy, x, a, b, c),
    }
}

/// The second pass of a training-mode batch norm (+ ReLU) backward, left
/// to run image group by image group where its output is read (a
/// convolution's backward), so that the whole gradient is never written
/// out: `dx = a[c] dy + b[c] x + c[c]`, with `dy` taken as 0 where
/// `x * scale + shift <= 0` given `mask = Some((scale, shift))`.
#[derive(Clone, Copy)]
pub struct DeferredDx<'a> {
    pub g: BnGeom,
    pub x: &'a [f32],
    pub dy: &'a [f32],
    pub coef: &'a [[f32; 3]],
    pub mask: Option<(&'a [f32], &'a [f32])>,
}

impl DeferredDx<'_> {
    /// `dx` of `out.len() / (c hw)` images from image `first` on, into `out`.
    pub fn images(&self, first: usize, out: &mut [f32]) {
        let g = self.g;
        let plane0 = first * g.c;
        for (i, dxp) in out.chunks_exact_mut(g.hw).enumerate() {
            let c = (plane0 + i) % g.c;
            let at = (plane0 + i) * g.hw;
            let mask = self.mask.map(|(a, b)| (a[c], b[c]));
            dx_plane(
                dxp,
                (&self.dy[at..][..g.hw], &self.x[at..][..g.hw]),
                self.coef[c],
                mask,
            );
        }
    }

    /// All of `dx`, written out (for the paths that read it from memory).
    pub fn materialize(&self) -> Vec<f32> {
        let mask_of = |c: usize| self.mask.map(|(a, b)| (a[c], b[c]));
        dx_pass(self.g, self.x, self.dy, self.coef, mask_of)
    }
}

/// The first pass of an earlier residual block's batch norm + shortcut +
/// ReLU backward (see [`add_relu_sums`]), run image group by image group
/// on the gradient of its output as a convolution backward writes it:
/// masks it where `y` (that block's output) is 0, and returns per channel
/// `[sum d, sum d (z - mean)]` of the group, `z` that batch norm's input.
#[derive(Clone, Copy)]
pub struct AddReluSums<'a> {
    pub g: BnGeom,
    pub y: &'a [f32],
    pub z: &'a [f32],
    pub mean: &'a [f32],
}

impl AddReluSums<'_> {
    /// Masks `d`, the gradient of images `first..`, in place; returns the
    /// group's per-channel sums.
    pub fn group(&self, first: usize, d: &mut [f32]) -> Vec<[f64; 2]> {
        let g = self.g;
        let mut lanes = vec![[[0f64; 16]; 2]; g.c];
        for (i, dp) in d.chunks_exact_mut(g.hw).enumerate() {
            let (at, c) = ((first * g.c + i) * g.hw, i % g.c);
            let (yp, zp) = (&self.y[at..][..g.hw], &self.z[at..][..g.hw]);
            simd::masked_grad_sums_in_place(dp, yp, zp, self.mean[c], &mut lanes[c]);
        }
        lanes.iter().map(simd::lane_total).collect()
    }
}

/// `(dgamma, dbeta)` and the `dx` coefficients of a training-mode batch
/// norm backward from its per-channel `[sum d, sum d (x - mean)]`.
pub fn grads_from_sums(
    g: BnGeom,
    gamma: &[f32],
    mean: &[f32],
    invstd: &[f32],
    sums: &[[f64; 2]],
) -> (Vec<f32>, Vec<f32>, Vec<[f32; 3]>) {
    let (dbeta, dgamma): (Vec<f32>, Vec<f32>) = sums
        .iter()
        .zip(invstd)
        .map(|(&[s, q], &is)| (s as f32, (q * is as f64) as f32))
        .unzip();
    let coef = dx_coefficients(g, gamma, mean, invstd, (&dbeta, &dgamma));
    (dgamma, dbeta, coef)
}

/// Per channel, `dx = k (dy - mean(dy) - xhat mean(dy xhat))` as
/// `a dy + b x + c`: returns `[a, b, c]` from `dbeta = sum dy` and
/// `dgamma = sum dy xhat`.
pub fn dx_coefficients(
    g: BnGeom,
    gamma: &[f32],
    mean: &[f32],
    invstd: &[f32],
    (dbeta, dgamma): (&[f32], &[f32]),
) -> Vec<[f32; 3]> {
    let inv_m = 1.0 / g.count() as f32;
    (0..g.c)
        .map(|c| {
            let k = gamma[c] * invstd[c];
            let (mdy, mdyx) = (dbeta[c] * inv_m, dgamma[c] * inv_m);
            let b = -k * invstd[c] * mdyx;
            [k, b, -k * mdy - b * mean[c]]
        })
        .collect()
}

/// Backward of `y = max(bn(x) + r, 0)` (training mode), given `y` and its
/// gradient `dy`. Returns `(dx, dgamma, dbeta, dr)`: `dr`, `dy` where
/// `y > 0` and 0 elsewhere, is both the residual's gradient and the batch
/// norm output's; the pass that writes it also takes the batch norm's sums.
pub fn backward_add_relu(
    g: BnGeom,
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    gamma: &[f32],
    mean: &[f32],
    invstd: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let (dr, dgamma, dbeta, coef) = add_relu_sums(g, x, y, dy, gamma, mean, invstd);
    let dx = dx_pass(g, x, &dr, &coef, |_| None);
    (dx, dgamma, dbeta, dr)
}

/// The first pass of [`backward_add_relu`]: returns `(dr, dgamma, dbeta,
/// coef)`, `coef` the per-channel `dx = a dr + b x + c` of the second.
pub fn add_relu_sums(
    g: BnGeom,
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    gamma: &[f32],
    mean: &[f32],
    invstd: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<[f32; 3]>) {
    let mut dr = crate::buffers::uninit_f32(x.len());
    let plane_sums: Vec<[f64; 2]> = dr
        .par_chunks_mut(g.hw)
        .enumerate()
        .with_min_len(planes_per_task(g.hw))
        .map(|(i, drp)| {
            let (n, c) = (i / g.c, i % g.c);
            let mut lanes = [[0f64; 16]; 2];
            let (yp, dp, xp) = (g.plane(y, n, c), g.plane(dy, n, c), g.plane(x, n, c));
            simd::masked_grad_sums(drp, dp, yp, xp, mean[c], &mut lanes);
            simd::lane_total(&lanes)
        })
        .collect();
    let (dbeta, dgamma): (Vec<f32>, Vec<f32>) = (0..g.c)
        .map(|c| {
            let [s, q] = (0..g.n).fold([0f64; 2], |[s, q], n| {
                let [ps, pq] = plane_sums[n * g.c + c];
                [s + ps, q + pq]
            });
            (s as f32, (q * invstd[c] as f64) as f32)
        })
        .unzip();
    let coef = dx_coefficients(g, gamma, mean, invstd, (&dbeta, &dgamma));
    (dr, dgamma, dbeta, coef)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (i as f32 * 0.731 + seed as f32).sin() * 1.5 + 0.2)
            .collect()
    }

    #[test]
    fn group_moments_merge_to_the_batch_statistics() {
        let g = BnGeom { n: 7, c: 3, hw: 37 };
        let x: Vec<f32> = data(7 * 3 * 37, 3).iter().map(|v| v + 40.0).collect();
        let (mean, var) = channel_stats(g, &x);
        // Groups of 3, 3 and 1 images.
        let plane = g.c * g.hw;
        let groups: Vec<Vec<Moments>> = x
            .chunks(3 * plane)
            .map(|part| {
                group_moments(
                    BnGeom {
                        n: part.len() / plane,
                        ..g
                    },
                    part,
                )
            })
            .collect();
        let (gm, gv) = merge_moments(&groups, g.c);
        for c in 0..g.c {
            let vals: Vec<f64> = (0..g.n)
                .flat_map(|n| g.plane(&x, n, c).iter().map(|&v| v as f64))
                .collect();
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let v = vals.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / vals.len() as f64;
            for (got, want) in [(gm[c], m), (mean[c], m), (gv[c], v), (var[c], v)] {
                assert!(
                    (got as f64 - want).abs() <= 1e-5 * want.abs().max(1.0),
                    "{got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn add_relu_backward_matches_separate_passes() {
        let g = BnGeom { n: 3, c: 4, hw: 37 };
        let (x, dy, r) = (
            data(3 * 4 * 37, 1),
            data(3 * 4 * 37, 2),
            data(3 * 4 * 37, 5),
        );
        let gamma = [0.7f32, -1.2, 1.0, 0.3];
        let beta = [0.1f32, 0.4, -0.3, 0.0];
        let (mean, var) = channel_stats(g, &x);
        let invstd: Vec<f32> = var.iter().map(|v| 1.0 / (v + 1e-5).sqrt()).collect();
        let (scale, shift) = train_affine(&gamma, &beta, &mean, &invstd);
        let mut y = vec![0f32; x.len()];
        scale_shift_add_relu(g, &x, &r, &scale, &shift, &mut y);
        let masked: Vec<f32> = dy
            .iter()
            .zip(&y)
            .map(|(&d, &v)| if v > 0.0 { d } else { 0.0 })
            .collect();
        assert!(masked.contains(&0.0) && masked.iter().any(|&v| v != 0.0));
        let (dx, dgamma, dbeta) = backward(g, &x, &masked, &gamma, &mean, &invstd, None, None);
        let (dx2, dgamma2, dbeta2, dr) = backward_add_relu(g, &x, &y, &dy, &gamma, &mean, &invstd);
        assert_eq!(dr, masked);
        let close = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .all(|(a, b)| (a - b).abs() <= 1e-5 * (1.0 + b.abs()))
        };
        assert!(close(&dx2, &dx) && close(&dgamma2, &dgamma) && close(&dbeta2, &dbeta));
    }

    #[test]
    fn fused_relu_matches_separate_passes() {
        let g = BnGeom { n: 3, c: 4, hw: 37 };
        let (x, dy) = (data(3 * 4 * 37, 1), data(3 * 4 * 37, 2));
        let gamma = [0.7f32, -1.2, 1.0, 0.3];
        let beta = [0.1f32, 0.4, -0.3, 0.0];
        let (mean, var) = channel_stats(g, &x);
        let invstd: Vec<f32> = var.iter().map(|v| 1.0 / (v + 1e-5).sqrt()).collect();
        let (scale, shift) = train_affine(&gamma, &beta, &mean, &invstd);
        let mut y = vec![0f32; x.len()];
        let mut yr = vec![0f32; x.len()];
        scale_shift(g, &x, &scale, &shift, &mut y, false);
        scale_shift(g, &x, &scale, &shift, &mut yr, true);
        // Forward: exactly relu of the unfused output.
        assert!(y.iter().zip(&yr).all(|(a, b)| a.max(0.0) == *b));
        assert!(yr.contains(&0.0) && yr.iter().any(|&v| v > 0.0));
        // Backward: exactly the unfused backward of the masked gradient.
        let masked: Vec<f32> = dy
            .iter()
            .zip(&yr)
            .map(|(&d, &v)| if v > 0.0 { d } else { 0.0 })
            .collect();
        let plain = backward(g, &x, &masked, &gamma, &mean, &invstd, None, None);
        let fused = backward(g, &x, &dy, &gamma, &mean, &invstd, Some(&beta), None);
        assert_eq!(plain, fused);
    }
}
