//! Softmax and log-softmax along a dimension on the GPU: one workgroup per
//! lane, its max and sums reduced in workgroup memory.

use super::reduce::groups;
use super::{f, GpuData, Kernel};
use crate::cpu::softmax::Lanes;
use crate::tensor::DType;

const FORWARD: &str = concat!(
    include_str!("shaders/softmax.wgsl"),
    include_str!("shaders/tree.wgsl")
);
const BACKWARD: &str = concat!(
    include_str!("shaders/softmax_backward.wgsl"),
    include_str!("shaders/tree.wgsl")
);

pub type Forward = fn(Lanes, &GpuData, f32) -> GpuData;
pub type Backward = fn(Lanes, &GpuData, &GpuData, f32) -> GpuData;

/// Runs `kernel` over every lane of `inputs` (all of input 0's length).
fn run(kernel: Kernel, l: Lanes, inputs: &[&GpuData], scale: f32) -> GpuData {
    let gpu = inputs[0].gpu();
    let out = gpu.alloc(DType::F32, inputs[0].len());
    let lanes = l.outer * l.inner;
    if lanes == 0 || l.size == 0 {
        return out;
    }
    let mut buffers = inputs.to_vec();
    buffers.push(&out);
    let params = [lanes as u32, l.size as u32, l.inner as u32, f(scale)];
    gpu.dispatch(&kernel, &buffers, &params, groups(lanes));
    out
}

fn forward(entry: &'static str, name: &'static str) -> Kernel {
    Kernel {
        name,
        source: FORWARD,
        entry,
    }
}

fn backward(entry: &'static str, name: &'static str) -> Kernel {
    Kernel {
        name,
        source: BACKWARD,
        entry,
    }
}

pub fn softmax(l: Lanes, x: &GpuData, scale: f32) -> GpuData {
    run(forward("softmax", "softmax.softmax"), l, &[x], scale)
}

pub fn log_softmax(l: Lanes, x: &GpuData, scale: f32) -> GpuData {
    run(
        forward("log_softmax", "softmax.log_softmax"),
        l,
        &[x],
        scale,
    )
}

pub fn softmax_backward(l: Lanes, y: &GpuData, dy: &GpuData, scale: f32) -> GpuData {
    let k = backward("softmax_backward", "softmax.softmax_backward");
    run(k, l, &[y, dy], scale)
}

pub fn log_softmax_backward(l: Lanes, y: &GpuData, dy: &GpuData, scale: f32) -> GpuData {
    let k = backward("log_softmax_backward", "softmax.log_softmax_backward");
    run(k, l, &[y, dy], scale)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{max_rel_diff, pair, run_both, values};
    use crate::error::Error;
    use crate::ffi::run_op;
    use crate::registry::with_registry;
    use crate::tensor::{Device, Tensor};

    /// Lanes shorter than the 64-thread workgroup, longer (strided), and
    /// lanes that are columns (inner > 1).
    const CASES: [(&[usize], f64); 3] = [(&[5, 37, 3], 1.0), (&[4, 300], 1.0), (&[300, 4], 0.0)];

    fn input(shape: &[usize], seed: u32, scale: f32) -> (u32, u32) {
        let n = shape.iter().product();
        let v = values(n, seed).into_iter().map(|v| v * scale).collect();
        pair(Tensor::from_f32(shape.to_vec(), v))
    }

    /// The cpu output of `op` as a gpu pair (the backward ops' y input).
    fn forward_pair(op: &str, x: (u32, u32), params: &[f64]) -> (u32, u32) {
        let (shape, c, _) = run_both(op, &[x.0], &[x.1], params).remove(0);
        pair(Tensor::from_f32(shape, c))
    }

    // exp and the tree sums differ from the cpu's by a few roundings; the
    // outputs are O(1) (log-softmax: |y| < 20), so 1e-5 of 1 + |y|.
    #[test]
    fn softmax_family_matches_cpu_within_1e_5() {
        for (shape, dim) in CASES {
            let x = input(shape, 1, 3.0);
            let dy = input(shape, 2, 1.0);
            let params = [dim, 2.5];
            for op in ["softmax", "log_softmax"] {
                let (_, c, g) = run_both(op, &[x.0], &[x.1], &params).remove(0);
                assert!(
                    max_rel_diff(&c, &g) <= 1e-5,
                    "{op} {shape:?}: {}",
                    max_rel_diff(&c, &g)
                );
                let y = forward_pair(op, x, &params);
                let back = format!("{op}_backward");
                let (_, c, g) = run_both(&back, &[y.0, dy.0], &[y.1, dy.1], &params).remove(0);
                assert!(
                    max_rel_diff(&c, &g) <= 1e-5,
                    "{back} {shape:?}: {}",
                    max_rel_diff(&c, &g)
                );
                assert!(c.iter().any(|&v| v.abs() > 0.01), "{back}: not all tiny");
            }
        }
    }

    #[test]
    fn more_lanes_than_one_grid_row_holds() {
        // 65,600 lanes: workgroups on a 2-D grid (65,535 along x).
        let x = input(&[65_600, 2], 6, 3.0);
        let (_, c, g) = run_both("softmax", &[x.0], &[x.1], &[1.0, 1.0]).remove(0);
        assert!(max_rel_diff(&c, &g) <= 1e-5, "{}", max_rel_diff(&c, &g));
    }

    #[test]
    fn softmax_rows_sum_to_one_on_the_gpu() {
        let x = input(&[4, 300], 3, 5.0);
        let out = run_op("softmax", &[x.1], &[1.0, 1.0], Device::Gpu).unwrap()[0];
        let y = with_registry(|r| super::super::testing::host_f32(r.get(out).unwrap()));
        for row in y.chunks(300) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn bad_inputs_are_refused_on_the_gpu() {
        let x = input(&[4, 3], 4, 1.0).1;
        let err = run_op("softmax", &[x], &[2.0], Device::Gpu).unwrap_err();
        assert!(matches!(err, Error::Param { .. }), "{err}");
        let dy = input(&[3, 4], 5, 1.0).1;
        let err = run_op("softmax_backward", &[x, dy], &[1.0], Device::Gpu).unwrap_err();
        assert!(matches!(err, Error::Shape { .. }), "{err}");
    }
}
