//! Helpers for tests that run one op on the cpu and on the gpu.

use crate::ffi::run_op;
use crate::registry::with_registry;
use crate::tensor::{Device, Tensor};

/// The GPU context, or a panic that says why there is none: a test of the
/// gpu device fails without an adapter instead of passing vacuously.
pub fn gpu() -> std::sync::Arc<super::Gpu> {
    super::context().unwrap_or_else(|e| panic!("{e}"))
}

/// Registers `t` and a gpu copy of it; returns both handles.
pub fn pair(t: Tensor) -> (u32, u32) {
    let bytes = t.to_host_bytes().expect("host bytes");
    let g = gpu().upload(t.dtype(), &bytes);
    let shape = t.shape.clone();
    with_registry(|r| (r.insert(t), r.insert(Tensor::from_gpu(shape, g))))
}

/// Runs `op` on the cpu handles and on the gpu ones; returns both outputs,
/// as host f32 (i32 outputs converted), with their shapes.
pub fn run_both(op: &str, cpu: &[u32], gpu: &[u32], params: &[f64]) -> Vec<(Vec<usize>, Vec<f32>, Vec<f32>)> {
    let c = run_op(op, cpu, params, Device::Cpu).unwrap_or_else(|e| panic!("cpu {op}: {e}"));
    let g = run_op(op, gpu, params, Device::Gpu).unwrap_or_else(|e| panic!("gpu {op}: {e}"));
    assert_eq!(c.len(), g.len(), "{op}: output counts");
    c.iter()
        .zip(&g)
        .map(|(&hc, &hg)| {
            with_registry(|r| {
                let (tc, tg) = (r.get(hc).unwrap(), r.get(hg).unwrap());
                assert_eq!(tc.shape, tg.shape, "{op}: shapes");
                assert_eq!(tc.dtype(), tg.dtype(), "{op}: dtypes");
                assert_eq!(tg.device(), Device::Gpu, "{op}: output device");
                (tc.shape.clone(), host_f32(tc), host_f32(tg))
            })
        })
        .collect()
}

/// A tensor's elements as f32 (i32 converted).
pub fn host_f32(t: &Tensor) -> Vec<f32> {
    let bytes = t.to_host_bytes().expect("host bytes");
    bytes
        .chunks_exact(4)
        .map(|b| {
            let w = [b[0], b[1], b[2], b[3]];
            match t.dtype() {
                crate::tensor::DType::F32 => f32::from_le_bytes(w),
                crate::tensor::DType::I32 => i32::from_le_bytes(w) as f32,
            }
        })
        .collect()
}

/// Largest |a - b| / (1 + |a|).
pub fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x - y).abs() / (1.0 + x.abs()))
        .fold(0.0, f32::max)
}

/// Deterministic test values in [-1, 1).
pub fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_ops_match_cpu_bit_for_bit() {
        // 70,000 elements: more than one row of the 2-D grid's x extent? No:
        // 274 groups; the grid test below covers the y extent.
        let (a_cpu, a_gpu) = pair(Tensor::from_f32(vec![7, 10_000], values(70_000, 1)));
        let (b_cpu, b_gpu) = pair(Tensor::from_f32(vec![7, 10_000], values(70_000, 2)));
        for op in ["add", "sub", "mul"] {
            for (_, c, g) in run_both(op, &[a_cpu, b_cpu], &[a_gpu, b_gpu], &[]) {
                assert_eq!(c, g, "{op}");
            }
        }
    }

    #[test]
    fn mixed_devices_are_refused_with_the_input_named() {
        let (a_cpu, _) = pair(Tensor::from_f32(vec![3], values(3, 1)));
        let (_, b_gpu) = pair(Tensor::from_f32(vec![3], values(3, 2)));
        let err = run_op("add", &[a_cpu, b_gpu], &[], Device::Cpu).unwrap_err();
        assert_eq!(
            err.to_string(),
            "add: inputs on different devices: input 0 is on cpu, input 1 on gpu"
        );
    }
}
