//! Elementwise kernels on the GPU: one thread an element.

use super::{f, grid, Kernel};
use crate::error::Result;
use crate::ops::Args;
use crate::tensor::{DType, Tensor};

const BINARY: &str = include_str!("shaders/binary.wgsl");
const UNARY: &str = include_str!("shaders/unary.wgsl");
const FILL: &str = include_str!("shaders/fill.wgsl");

fn binary(a: &Args, entry: &'static str, name: &'static str) -> Result<Vec<Tensor>> {
    let (x, y) = (a.ins[0].gpu(a.op, 0)?, a.ins[1].gpu(a.op, 1)?);
    let gpu = x.gpu();
    let n = x.len();
    let out = gpu.alloc(DType::F32, n);
    let kernel = Kernel {
        name,
        source: BINARY,
        entry,
    };
    gpu.dispatch(&kernel, &[x, y, &out], &[n as u32], grid(n));
    Ok(vec![Tensor::from_gpu(a.ins[0].shape.clone(), out)])
}

/// A one-input kernel with two f32 parameters (unused by most entries).
fn unary(a: &Args, entry: &'static str, name: &'static str, s: f32, t: f32) -> Result<Vec<Tensor>> {
    let x = a.ins[0].gpu(a.op, 0)?;
    let gpu = x.gpu();
    let n = x.len();
    let out = gpu.alloc(DType::F32, n);
    let kernel = Kernel {
        name,
        source: UNARY,
        entry,
    };
    gpu.dispatch(&kernel, &[x, &out], &[n as u32, f(s), f(t)], grid(n));
    Ok(vec![Tensor::from_gpu(a.ins[0].shape.clone(), out)])
}

pub fn add(a: &mut Args) -> Result<Vec<Tensor>> {
    binary(a, "add", "binary.add")
}

pub fn sub(a: &mut Args) -> Result<Vec<Tensor>> {
    binary(a, "sub", "binary.sub")
}

pub fn mul(a: &mut Args) -> Result<Vec<Tensor>> {
    binary(a, "mul", "binary.mul")
}

pub fn relu_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    binary(a, "relu_backward", "binary.relu_backward")
}

pub fn add_relu(a: &mut Args) -> Result<Vec<Tensor>> {
    binary(a, "add_relu", "binary.add_relu")
}

pub fn log_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    binary(a, "log_backward", "binary.log_backward")
}

pub fn ndtri_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    binary(a, "ndtri_backward", "binary.ndtri_backward")
}

pub fn affine(a: &mut Args) -> Result<Vec<Tensor>> {
    let (s, t) = (
        a.param(0, "scale")? as f32,
        a.param_or(1, "shift", 0.0)? as f32,
    );
    unary(a, "affine", "unary.affine", s, t)
}

pub fn relu(a: &mut Args) -> Result<Vec<Tensor>> {
    unary(a, "relu", "unary.relu", 0.0, 0.0)
}

pub fn log(a: &mut Args) -> Result<Vec<Tensor>> {
    unary(a, "log_", "unary.log", 0.0, 0.0)
}

pub fn sqrt(a: &mut Args) -> Result<Vec<Tensor>> {
    unary(a, "sqrt_", "unary.sqrt", 0.0, 0.0)
}

pub fn recip(a: &mut Args) -> Result<Vec<Tensor>> {
    unary(a, "recip", "unary.recip", 0.0, 0.0)
}

pub fn ndtri(a: &mut Args) -> Result<Vec<Tensor>> {
    unary(a, "ndtri_", "unary.ndtri", 0.0, 0.0)
}

/// `dims` filled with `v`, on the process's GPU.
pub fn full(dims: Vec<usize>, v: f32) -> Result<Tensor> {
    let gpu = super::context()?;
    let n = dims.iter().product();
    let out = gpu.alloc(DType::F32, n);
    let kernel = Kernel {
        name: "fill",
        source: FILL,
        entry: "fill",
    };
    gpu.dispatch(&kernel, &[&out], &[n as u32, f(v)], grid(n));
    Ok(Tensor::from_gpu(dims, out))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{host_f32, max_rel_diff, pair, run_both, values};
    use crate::error::Error;
    use crate::ffi::run_op;
    use crate::registry::with_registry;
    use crate::tensor::{Device, Tensor};

    /// 1,031 elements: four full workgroups and a partial one.
    const SHAPE: [usize; 2] = [1031, 1];

    fn input(seed: u32, f: impl Fn(f32) -> f32) -> (u32, u32) {
        let v = values(1031, seed).into_iter().map(f).collect();
        pair(Tensor::from_f32(SHAPE.to_vec(), v))
    }

    /// The one output of `op` on both devices.
    fn both(op: &str, ins: &[(u32, u32)], params: &[f64]) -> (Vec<f32>, Vec<f32>) {
        let (c, g): (Vec<u32>, Vec<u32>) = ins.iter().copied().unzip();
        let mut outs = run_both(op, &c, &g, params);
        assert_eq!(outs.len(), 1, "{op}");
        let (_, c, g) = outs.remove(0);
        (c, g)
    }

    #[test]
    fn selections_and_sums_match_cpu_bit_for_bit() {
        // No rounding beyond one add: the same bits on any device.
        let (y, d) = (input(1, |v| v), input(2, |v| v));
        for op in ["relu_backward", "add_relu"] {
            let (c, g) = both(op, &[y, d], &[]);
            assert_eq!(c, g, "{op}");
        }
        let (c, g) = both("relu", &[y], &[]);
        assert_eq!(c, g, "relu");
        assert!(
            c.contains(&0.0) && c.iter().any(|&v| v > 0.0),
            "relu: both branches"
        );
    }

    #[test]
    fn affine_log_and_log_backward_match_cpu_within_rounding() {
        let x = input(3, |v| v);
        // A gpu compiler may fuse scale * x + shift into one fma: 1 rounding apart.
        let (c, g) = both("affine", &[x], &[1.7, -0.3]);
        assert!(
            max_rel_diff(&c, &g) <= 1e-6,
            "affine {}",
            max_rel_diff(&c, &g)
        );
        // Vulkan allows log 2^-21 absolute error near 1, 3 ulp elsewhere;
        // max_rel_diff is absolute for |log x| < 1 and relative above.
        let p = input(4, |v| v.abs() * 4.0 + 1e-4);
        let (c, g) = both("log", &[p], &[]);
        assert!(max_rel_diff(&c, &g) <= 2e-6, "log {}", max_rel_diff(&c, &g));
        // A gpu division may be 2.5 ulp off.
        let (c, g) = both("log_backward", &[p, x], &[]);
        assert!(
            max_rel_diff(&c, &g) <= 1e-6,
            "log_backward {}",
            max_rel_diff(&c, &g)
        );
    }

    #[test]
    fn sqrt_and_recip_match_cpu_within_rounding() {
        let p = input(5, |v| v.abs() * 4.0 + 1e-3);
        // WGSL allows sqrt and 1 / x a couple of ulp from the rounded result.
        for op in ["sqrt", "recip"] {
            let (c, g) = both(op, &[p], &[]);
            assert!(
                max_rel_diff(&c, &g) <= 1e-6,
                "{op} {}",
                max_rel_diff(&c, &g)
            );
        }
    }

    /// Probabilities from the far tails (subnormal ones down to 1e-45) to
    /// the center.
    fn probabilities() -> Vec<f32> {
        let tails = (1..=45).flat_map(|k| {
            let t = 10f64.powi(-k) as f32;
            [t, 3.0 * t, 1.0 - t]
        });
        let grid = (0..2000).map(|i| (i as f32 + 0.5) / 2000.0);
        tails.chain(grid).collect()
    }

    /// Largest |g - c| / |c| over finite c, with c the f64 reference.
    fn max_relative(c: &[f32], g: &[f32]) -> f32 {
        c.iter()
            .zip(g)
            .filter(|(c, _)| c.is_finite() && **c != 0.0)
            .map(|(c, g)| ((g - c) / c).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn ndtri_matches_the_f64_cpu_within_1e_6_relative() {
        let p = probabilities();
        let n = p.len();
        let (pc, pg) = pair(Tensor::from_f32(vec![n], p));
        let (c, g) = both("ndtri", &[(pc, pg)], &[]);
        // PPND7 is good to about 1e-7; f32 evaluation and the gpu's log add
        // a few ulp (3.1e-7 on lavapipe). 1 - p rounds to 1 below 6e-8,
        // so those give inf on both.
        let err = max_relative(&c, &g);
        assert!(err <= 1e-6, "ndtri {err:e}");
        assert_eq!(
            c.iter().map(|v| v.is_finite()).collect::<Vec<_>>(),
            g.iter().map(|v| v.is_finite()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn ndtri_gives_the_cpu_special_values() {
        let p = vec![0.0, -0.0, 1.0, -0.5, 1.5, f32::NAN, f32::INFINITY, 0.5];
        let (pc, pg) = pair(Tensor::from_f32(vec![8], p));
        let (c, g) = both("ndtri", &[(pc, pg)], &[]);
        let bits = |v: &[f32]| {
            v.iter()
                .map(|x| if x.is_nan() { u32::MAX } else { x.to_bits() })
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&c), bits(&g));
        assert_eq!(
            g[..3],
            [f32::NEG_INFINITY, f32::NEG_INFINITY, f32::INFINITY]
        );
    }

    #[test]
    fn ndtri_backward_matches_the_f64_cpu_within_1e_6_relative() {
        // y over ndtri's range for f32 probabilities (|y| <= 13.2), where
        // exp(y^2 / 2) reaches 1e38.
        let y = input(5, |v| v * 13.2);
        let d = input(6, |v| v + 1.5);
        let (c, g) = both("ndtri_backward", &[y, d], &[]);
        // A few roundings and exp's few ulp (3.4e-7 on lavapipe).
        let err = max_relative(&c, &g);
        assert!(err <= 1e-6, "ndtri_backward {err:e}");
    }

    #[test]
    fn full_reshape_and_copy_match_cpu_bit_for_bit() {
        let (c, g) = both("full", &[], &[-2.5, 3.0, 7.0, 13.0]);
        assert_eq!(c, g);
        assert_eq!(g, vec![-2.5; 3 * 7 * 13]);
        let x = input(7, |v| v);
        let outs = run_both("reshape", &[x.0], &[x.1], &[-1.0, 1.0]);
        assert_eq!(outs[0].0, vec![1031, 1]);
        assert_eq!(outs[0].1, outs[0].2);
        let dst = input(8, |v| v).1;
        run_op("copy_", &[dst, x.1], &[], Device::Gpu).unwrap();
        let copied = with_registry(|r| host_f32(r.get(dst).unwrap()));
        assert_eq!(copied, with_registry(|r| host_f32(r.get(x.0).unwrap())));
    }

    #[test]
    fn bad_inputs_are_refused_on_the_gpu() {
        let ints = pair(Tensor::from_i32(vec![3], vec![1, 2, 3])).1;
        let err = run_op("relu", &[ints], &[], Device::Gpu).unwrap_err();
        assert_eq!(err.to_string(), "relu: input 0 must be f32, got i32");
        let (a, b) = (
            input(1, |v| v).1,
            pair(Tensor::from_f32(vec![2], vec![1.0, 2.0])).1,
        );
        assert!(matches!(
            run_op("add_relu", &[a, b], &[], Device::Gpu),
            Err(Error::Shape { .. })
        ));
        // copy_ across devices is an error, not a panic.
        let cpu = input(2, |v| v).0;
        let err = run_op("copy_", &[cpu, a], &[], Device::Cpu).unwrap_err();
        assert!(matches!(err, Error::Devices { .. }), "{err}");
    }
}
