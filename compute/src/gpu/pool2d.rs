//! Max and average pooling on the GPU (square window, no padding): one
//! thread per output element forward, a gather per input element backward,
//! so no two threads write one element.

use super::{grid, GpuData, Kernel};
use crate::error::Result;
use crate::geometry::PoolGeom;
use crate::ops::Args;
use crate::tensor::{DType, Tensor};

const MAX_FORWARD: &str = concat!(
    include_str!("shaders/pool_common.wgsl"),
    include_str!("shaders/max_pool_forward.wgsl")
);
const MAX_BACKWARD: &str = concat!(
    include_str!("shaders/pool_common.wgsl"),
    include_str!("shaders/max_pool_backward.wgsl")
);
const AVG_FORWARD: &str = concat!(
    include_str!("shaders/pool_common.wgsl"),
    include_str!("shaders/avg_pool_forward.wgsl")
);
const AVG_BACKWARD: &str = concat!(
    include_str!("shaders/pool_common.wgsl"),
    include_str!("shaders/avg_pool_backward.wgsl")
);

/// Records `source` over `buffers` with one thread per element of the last.
fn run(name: &'static str, source: &'static str, buffers: &[&GpuData], g: PoolGeom) {
    let threads = buffers.last().map_or(0, |b| b.len());
    if threads == 0 {
        return;
    }
    let kernel = Kernel {
        name,
        source,
        entry: "main",
    };
    let inv = 1.0 / (g.k * g.k) as f32;
    let words = [g.planes, g.h, g.w, g.k, g.stride, g.ho, g.wo].map(|v| v as u32);
    let words = [&words[..], &[super::f(inv)]].concat();
    buffers[0]
        .gpu()
        .dispatch(&kernel, buffers, &words, grid(threads));
}

/// Outputs: y and the argmax indices (i32, within each plane), shaped `out`.
pub fn max_pool2d(a: &mut Args, g: PoolGeom, out: Vec<usize>) -> Result<Vec<Tensor>> {
    let x = a.ins[0].gpu(a.op, 0)?;
    let n = g.planes * g.ho * g.wo;
    let (y, idx) = (x.gpu().alloc(DType::F32, n), x.gpu().alloc(DType::I32, n));
    // Both outputs have n elements: the thread count is idx's.
    run("pool.max_forward", MAX_FORWARD, &[x, &y, &idx], g);
    Ok(vec![
        Tensor::from_gpu(out.clone(), y),
        Tensor::from_gpu(out, idx),
    ])
}

/// Inputs: dy, indices. Indices outside the window of their output (which
/// the forward never produces) contribute nothing.
pub fn max_pool2d_backward(a: &mut Args, g: PoolGeom, out: Vec<usize>) -> Result<Vec<Tensor>> {
    let (dy, idx) = (a.ins[0].gpu(a.op, 0)?, a.ins[1].gpu(a.op, 1)?);
    let dx = dy.gpu().alloc(DType::F32, g.planes * g.h * g.w);
    run("pool.max_backward", MAX_BACKWARD, &[dy, idx, &dx], g);
    Ok(vec![Tensor::from_gpu(out, dx)])
}

pub fn avg_pool2d(a: &mut Args, g: PoolGeom, out: Vec<usize>) -> Result<Vec<Tensor>> {
    let x = a.ins[0].gpu(a.op, 0)?;
    let y = x.gpu().alloc(DType::F32, g.planes * g.ho * g.wo);
    run("pool.avg_forward", AVG_FORWARD, &[x, &y], g);
    Ok(vec![Tensor::from_gpu(out, y)])
}

pub fn avg_pool2d_backward(a: &mut Args, g: PoolGeom, out: Vec<usize>) -> Result<Vec<Tensor>> {
    let dy = a.ins[0].gpu(a.op, 0)?;
    let dx = dy.gpu().alloc(DType::F32, g.planes * g.h * g.w);
    run("pool.avg_backward", AVG_BACKWARD, &[dy, &dx], g);
    Ok(vec![Tensor::from_gpu(out, dx)])
}

#[cfg(test)]
mod tests {
    use crate::geometry::PoolGeom;
    use crate::gpu::testing::{max_rel_diff, pair, run_both, values};
    use crate::tensor::Tensor;

    /// (n, c, h, w, k, stride): LeNet's 2x2 pools, overlapping 3x3 windows
    /// at stride 2 on sizes they do not tile, stride 1, ResNet's global 8x8
    /// average.
    const SHAPES: [[usize; 6]; 4] = [
        [3, 6, 24, 24, 2, 2],
        [2, 3, 9, 7, 3, 2],
        [2, 2, 5, 6, 2, 1],
        [4, 5, 8, 8, 8, 8],
    ];

    fn geom([n, c, h, w, k, s]: [usize; 6]) -> PoolGeom {
        PoolGeom {
            planes: n * c,
            h,
            w,
            k,
            stride: s,
            ho: (h - k) / s + 1,
            wo: (w - k) / s + 1,
        }
    }

    /// Values on a coarse grid, so windows hold ties (the first one wins).
    fn coarse(n: usize, seed: u32) -> Vec<f32> {
        values(n, seed).iter().map(|v| (v * 4.0).round()).collect()
    }

    #[test]
    fn max_pool_matches_cpu_bit_for_bit() {
        // Comparisons and sums in the CPU's order: exact.
        for shape @ [n, c, h, w, k, s] in SHAPES {
            let g = geom(shape);
            let x_host = coarse(n * c * h * w, 1);
            let (x, xg) = pair(Tensor::from_f32(vec![n, c, h, w], x_host.clone()));
            let params = [k as f64, s as f64];
            for (_, cpu, gpu) in run_both("max_pool2d", &[x], &[xg], &params) {
                assert_eq!(cpu, gpu, "max_pool2d {shape:?}");
            }
            let out = vec![n, c, g.ho, g.wo];
            let (mut y, mut idx) = (
                vec![0.0; g.planes * g.ho * g.wo],
                vec![0; g.planes * g.ho * g.wo],
            );
            crate::cpu::pool2d::max_forward(g, &x_host, &mut y, &mut idx);
            let (i, ig) = pair(Tensor::from_i32(out.clone(), idx));
            let (dy, dyg) = pair(Tensor::from_f32(out, values(y.len(), 2)));
            let params = [k as f64, s as f64, h as f64, w as f64];
            for (_, cpu, gpu) in run_both("max_pool2d_backward", &[dy, i], &[dyg, ig], &params) {
                assert_eq!(cpu, gpu, "max_pool2d_backward {shape:?}");
            }
        }
    }

    #[test]
    fn avg_pool_matches_cpu() {
        // Sums in the CPU's order; a GPU may fuse the backward's multiply
        // and add (one rounding fewer): 1e-6 relative allowed.
        for shape @ [n, c, h, w, k, s] in SHAPES {
            let g = geom(shape);
            let (x, xg) = pair(Tensor::from_f32(vec![n, c, h, w], values(n * c * h * w, 3)));
            for (_, cpu, gpu) in run_both("avg_pool2d", &[x], &[xg], &[k as f64, s as f64]) {
                assert!(max_rel_diff(&cpu, &gpu) <= 1e-6, "avg_pool2d {shape:?}");
            }
            let dy_host = values(g.planes * g.ho * g.wo, 4);
            let (dy, dyg) = pair(Tensor::from_f32(vec![n, c, g.ho, g.wo], dy_host));
            let params = [k as f64, s as f64, h as f64, w as f64];
            for (_, cpu, gpu) in run_both("avg_pool2d_backward", &[dy], &[dyg], &params) {
                assert!(
                    max_rel_diff(&cpu, &gpu) <= 1e-6,
                    "avg_pool2d_backward {shape:?}"
                );
            }
        }
    }
}
