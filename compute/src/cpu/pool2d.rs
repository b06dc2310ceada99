//! Max and average pooling without padding, one plane per task.

use rayon::prelude::*;

use crate::error::{param_err, Result};
use crate::geometry::PoolGeom;
use crate::ops::Args;
use crate::tensor::Tensor;

/// The `max_pool2d` op on host tensors: y and the argmax indices, shaped `out`.
pub fn max_pool2d(a: &mut Args, g: PoolGeom, out: Vec<usize>) -> Result<Vec<Tensor>> {
    let n = g.planes * g.ho * g.wo;
    let (mut y, mut idx) = (crate::buffers::uninit_f32(n), crate::buffers::uninit_i32(n));
    max_forward(g, a.f32(0)?, &mut y, &mut idx);
    Ok(vec![
        Tensor::from_f32(out.clone(), y),
        Tensor::from_i32(out, idx),
    ])
}

/// The `max_pool2d_backward` op on host tensors (dy, indices): dx shaped `out`.
pub fn max_pool2d_backward(a: &mut Args, g: PoolGeom, out: Vec<usize>) -> Result<Vec<Tensor>> {
    let idx = a.i32(1)?;
    if idx.iter().any(|&i| i < 0 || i as usize >= g.h * g.w) {
        return param_err(a.op, "index outside the input plane");
    }
    let mut dx = crate::buffers::uninit_f32(g.planes * g.h * g.w);
    max_backward(g, a.f32(0)?, idx, &mut dx);
    Ok(vec![Tensor::from_f32(out, dx)])
}

/// The `avg_pool2d` op on host tensors: y shaped `out`.
pub fn avg_pool2d(a: &mut Args, g: PoolGeom, out: Vec<usize>) -> Result<Vec<Tensor>> {
    let mut y = crate::buffers::uninit_f32(g.planes * g.ho * g.wo);
    avg_forward(g, a.f32(0)?, &mut y);
    Ok(vec![Tensor::from_f32(out, y)])
}

/// The `avg_pool2d_backward` op on host tensors (dy): dx shaped `out`.
pub fn avg_pool2d_backward(a: &mut Args, g: PoolGeom, out: Vec<usize>) -> Result<Vec<Tensor>> {
    let mut dx = crate::buffers::uninit_f32(g.planes * g.h * g.w);
    avg_backward(g, a.f32(0)?, &mut dx);
    Ok(vec![Tensor::from_f32(out, dx)])
}

/// Max pooling; `idx` gets the winning position `iy * W + ix` within the
/// plane (the first one on ties, as PyTorch; a NaN always wins, the last one
/// if several). Branch-free, so random data does not mispredict.
pub fn max_forward(g: PoolGeom, x: &[f32], y: &mut [f32], idx: &mut [i32]) {
    let (hw, out) = (g.h * g.w, g.ho * g.wo);
    if out == 0 {
        return;
    }
    y.par_chunks_mut(out)
        .zip(idx.par_chunks_mut(out))
        .enumerate()
        .with_min_len((1024 / out).max(1))
        .for_each(|(pl, (yp, ip))| {
            let xp = &x[pl * hw..(pl + 1) * hw];
            if g.k == 2 && g.stride == 2 {
                max_plane_2x2(g, xp, yp, ip);
            } else {
                max_plane(g, xp, yp, ip);
            }
        });
}

#[inline(always)]
fn take(best: &mut f32, at: &mut usize, v: f32, pos: usize) {
    let t = v > *best || v.is_nan();
    *best = if t { v } else { *best };
    *at = if t { pos } else { *at };
}

fn max_plane(g: PoolGeom, xp: &[f32], yp: &mut [f32], ip: &mut [i32]) {
    for oy in 0..g.ho {
        for ox in 0..g.wo {
            let first = oy * g.stride * g.w + ox * g.stride;
            let (mut best, mut at) = (xp[first], first);
            for i in 0..g.k {
                let row = first + i * g.w;
                for (j, &v) in xp[row..row + g.k].iter().enumerate() {
                    take(&mut best, &mut at, v, row + j);
                }
            }
            yp[oy * g.wo + ox] = best;
            ip[oy * g.wo + ox] = at as i32;
        }
    }
}

fn max_plane_2x2(g: PoolGeom, xp: &[f32], yp: &mut [f32], ip: &mut [i32]) {
    for oy in 0..g.ho {
        let r0 = 2 * oy * g.w;
        let r1 = r0 + g.w;
        let (a, b) = (&xp[r0..r0 + 2 * g.wo], &xp[r1..r1 + 2 * g.wo]);
        let yr = &mut yp[oy * g.wo..(oy + 1) * g.wo];
        let ir = &mut ip[oy * g.wo..(oy + 1) * g.wo];
        for ox in 0..g.wo {
            let p = r0 + 2 * ox;
            let (mut best, mut at) = (a[2 * ox], p);
            take(&mut best, &mut at, a[2 * ox + 1], p + 1);
            take(&mut best, &mut at, b[2 * ox], p + g.w);
            take(&mut best, &mut at, b[2 * ox + 1], p + g.w + 1);
            yr[ox] = best;
            ir[ox] = at as i32;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_2x2_matches_general_path() {
        let g = PoolGeom {
            planes: 1,
            h: 4,
            w: 6,
            k: 2,
            stride: 2,
            ho: 2,
            wo: 3,
        };
        let mut x: Vec<f32> = (0..24).map(|i| ((i * 37) % 11) as f32).collect();
        x[7] = f32::NAN;
        for i in [2, 3, 8, 9] {
            x[i] = 100.0;
        }
        let (mut y1, mut i1) = (vec![0f32; 6], vec![0i32; 6]);
        let (mut y2, mut i2) = (vec![0f32; 6], vec![0i32; 6]);
        max_plane_2x2(g, &x, &mut y1, &mut i1);
        max_plane(g, &x, &mut y2, &mut i2);
        assert_eq!(i1, i2);
        assert_eq!(i1[1], 2, "first of equal values wins");
        assert_eq!(i1[0], 7, "NaN wins");
        for (a, b) in y1.iter().zip(&y2) {
            assert!(a == b || (a.is_nan() && b.is_nan()));
        }
    }
}
