//! Batch normalisation over (N, H, W) for each channel of NCHW tensors.
//! Per-channel sums run in f64 over a fixed order, so statistics are
//! accurate and reproducible.

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

/// Batch mean and biased variance of each channel.
pub fn channel_stats(g: BnGeom, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let stats: Vec<(f32, f32)> = (0..g.c)
        .into_par_iter()
        .map(|c| {
            let mut sum = 0f64;
            for n in 0..g.n {
                sum += g.plane(x, n, c).iter().map(|&v| v as f64).sum::<f64>();
            }
            let mean = sum / g.count() as f64;
            let mut sq = 0f64;
            for n in 0..g.n {
                sq += g
                    .plane(x, n, c)
                    .iter()
                    .map(|&v| (v as f64 - mean).powi(2))
                    .sum::<f64>();
            }
            (mean as f32, (sq / g.count() as f64) as f32)
        })
        .collect();
    stats.into_iter().unzip()
}

/// `y = x * scale[c] + shift[c]`, the form both train and eval reduce to.
pub fn scale_shift(g: BnGeom, x: &[f32], scale: &[f32], shift: &[f32], y: &mut [f32]) {
    y.par_chunks_mut(g.hw)
        .zip(x.par_chunks(g.hw))
        .enumerate()
        .for_each(|(i, (yp, xp))| {
            let c = i % g.c;
            let (a, b) = (scale[c], shift[c]);
            yp.iter_mut().zip(xp).for_each(|(y, &x)| *y = x * a + b);
        });
}

/// Gradients of the training-mode transform given the saved batch mean and
/// inverse standard deviation. Returns `(dx, dgamma, dbeta)`.
pub fn backward(
    g: BnGeom,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    mean: &[f32],
    invstd: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let sums: Vec<(f32, f32)> = (0..g.c)
        .into_par_iter()
        .map(|c| {
            let (mut sdy, mut sdyx) = (0f64, 0f64);
            let m = mean[c];
            for n in 0..g.n {
                let (xp, dp) = (g.plane(x, n, c), g.plane(dy, n, c));
                for (&xv, &d) in xp.iter().zip(dp) {
                    sdy += d as f64;
                    sdyx += (d * (xv - m)) as f64;
                }
            }
            (sdy as f32, (sdyx * invstd[c] as f64) as f32)
        })
        .collect();
    let (dbeta, dgamma): (Vec<f32>, Vec<f32>) = sums.into_iter().unzip();
    let inv_m = 1.0 / g.count() as f32;
    let mut dx = vec![0f32; x.len()];
    dx.par_chunks_mut(g.hw).enumerate().for_each(|(i, dxp)| {
        let (n, c) = (i / g.c, i % g.c);
        let (xp, dp) = (g.plane(x, n, c), g.plane(dy, n, c));
        let k = gamma[c] * invstd[c];
        let (mdy, mdyx) = (dbeta[c] * inv_m, dgamma[c] * inv_m);
        for ((o, &xv), &d) in dxp.iter_mut().zip(xp).zip(dp) {
            let xhat = (xv - mean[c]) * invstd[c];
            *o = k * (d - mdy - xhat * mdyx);
        }
    });
    (dx, dgamma, dbeta)
}
