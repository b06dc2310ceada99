//! Max and average pooling without padding, one plane per task.

use rayon::prelude::*;

#[derive(Clone, Copy)]
pub struct PoolGeom {
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
    pub ho: usize,
    pub wo: usize,
}

/// Max pooling; `idx` gets the winning position `iy * W + ix` within the
/// plane (the first one on ties, as PyTorch).
pub fn max_forward(g: PoolGeom, x: &[f32], y: &mut [f32], idx: &mut [i32]) {
    let (hw, out) = (g.h * g.w, g.ho * g.wo);
    y.par_chunks_mut(out)
        .zip(idx.par_chunks_mut(out))
        .enumerate()
        .for_each(|(pl, (yp, ip))| {
            let xp = &x[pl * hw..(pl + 1) * hw];
            for oy in 0..g.ho {
                for ox in 0..g.wo {
                    let (mut best, mut at) = (f32::NEG_INFINITY, -1i32);
                    for i in 0..g.k {
                        let iy = oy * g.stride + i;
                        for j in 0..g.k {
                            let pos = iy * g.w + ox * g.stride + j;
                            let v = xp[pos];
                            if v > best || at < 0 || v.is_nan() {
                                best = v;
                                at = pos as i32;
                            }
                        }
                    }
                    yp[oy * g.wo + ox] = best;
                    ip[oy * g.wo + ox] = at;
                }
            }
        });
}

pub fn max_backward(g: PoolGeom, dy: &[f32], idx: &[i32], dx: &mut [f32]) {
    let (hw, out) = (g.h * g.w, g.ho * g.wo);
    dx.par_chunks_mut(hw).enumerate().for_each(|(pl, dxp)| {
        dxp.fill(0.0);
        for (d, &i) in dy[pl * out..(pl + 1) * out]
            .iter()
            .zip(&idx[pl * out..(pl + 1) * out])
        {
            dxp[i as usize] += d;
        }
    });
}

pub fn avg_forward(g: PoolGeom, x: &[f32], y: &mut [f32]) {
    let (hw, out) = (g.h * g.w, g.ho * g.wo);
    let inv = 1.0 / (g.k * g.k) as f32;
    y.par_chunks_mut(out).enumerate().for_each(|(pl, yp)| {
        let xp = &x[pl * hw..(pl + 1) * hw];
        for oy in 0..g.ho {
            for ox in 0..g.wo {
                let mut s = 0f32;
                for i in 0..g.k {
                    let row = (oy * g.stride + i) * g.w + ox * g.stride;
                    s += xp[row..row + g.k].iter().sum::<f32>();
                }
                yp[oy * g.wo + ox] = s * inv;
            }
        }
    });
}

pub fn avg_backward(g: PoolGeom, dy: &[f32], dx: &mut [f32]) {
    let (hw, out) = (g.h * g.w, g.ho * g.wo);
    let inv = 1.0 / (g.k * g.k) as f32;
    dx.par_chunks_mut(hw).enumerate().for_each(|(pl, dxp)| {
        dxp.fill(0.0);
        let dyp = &dy[pl * out..(pl + 1) * out];
        for oy in 0..g.ho {
            for ox in 0..g.wo {
                let d = dyp[oy * g.wo + ox] * inv;
                for i in 0..g.k {
                    let row = (oy * g.stride + i) * g.w + ox * g.stride;
                    dxp[row..row + g.k].iter_mut().for_each(|v| *v += d);
                }
            }
        }
    });
}
