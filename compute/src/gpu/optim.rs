//! SGD on the GPU: one in-place pass per (param, buffer, grad) triple.

use super::{f, grid, GpuData, Kernel};
use crate::cpu::optim::Step;

const SGD: Kernel = Kernel {
    name: "optim.sgd",
    source: include_str!("shaders/optim.wgsl"),
    entry: "sgd",
};

/// Updates `p` and its momentum buffer `b` from the gradient `g`, in place.
pub fn sgd_step(step: Step, p: &GpuData, b: &GpuData, g: &GpuData) {
    let n = p.len();
    let params = [
        n as u32,
        f(step.lr),
        f(step.mom),
        f(step.wd),
        f(1.0 - step.damp),
        step.nesterov as u32,
        step.first as u32,
        f(1.0),
    ];
    p.gpu().dispatch(&SGD, &[p, b, g], &params, grid(n));
}

#[cfg(test)]
mod tests {
    use crate::ffi::run_op;
    use crate::gpu::testing::{host_f32, pair, values};
    use crate::registry::with_registry;
    use crate::tensor::{Device, Tensor};

    /// Params, buffers and grads of three tensors (sizes not multiples of
    /// the workgroup), as (param, buffer)..., grad... handles per device.
    fn model(seed: u32) -> (Vec<u32>, Vec<u32>) {
        let sizes = [300, 7, 1000];
        let (mut cpu, mut gpu) = (Vec::new(), Vec::new());
        let mut add = |n: usize, s: u32| {
            let (c, g) = pair(Tensor::from_f32(vec![n], values(n, s)));
            cpu.push(c);
            gpu.push(g);
        };
        for (i, &n) in sizes.iter().enumerate() {
            add(n, seed + 2 * i as u32);
            add(n, seed + 2 * i as u32 + 1);
        }
        for (i, &n) in sizes.iter().enumerate() {
            add(n, seed + 10 + i as u32);
        }
        (cpu, gpu)
    }

    fn host(handles: &[u32]) -> Vec<Vec<f32>> {
        with_registry(|r| {
            handles
                .iter()
                .map(|&h| host_f32(r.get(h).unwrap()))
                .collect()
        })
    }

    #[test]
    fn sgd_step_matches_cpu_bit_for_bit() {
        // Elementwise and free of fused multiply-adds on both devices (see
        // optim.wgsl's mul): the updates must be identical, no tolerance.
        // Params: lr, momentum, weight_decay, dampening, nesterov, first_step.
        let steps: [[f64; 6]; 5] = [
            [0.1, 0.9, 5e-4, 0.0, 0.0, 1.0],
            [0.1, 0.9, 5e-4, 0.0, 0.0, 0.0],
            [0.05, 0.9, 1e-3, 0.1, 0.0, 0.0],
            [0.07, 0.8, 5e-4, 0.0, 1.0, 0.0],
            [0.3, 0.0, 1e-2, 0.0, 0.0, 0.0],
        ];
        let (cpu, gpu) = model(21);
        for params in steps {
            run_op("sgd_step", &cpu, &params, Device::Cpu).unwrap();
            run_op("sgd_step", &gpu, &params, Device::Gpu).unwrap();
            let (c, g) = (host(&cpu[..6]), host(&gpu[..6]));
            for (i, (c, g)) in c.iter().zip(&g).enumerate() {
                assert_eq!(c, g, "tensor {i} after step {params:?}");
            }
        }
        // The steps moved the parameters: the comparison is not of inputs.
        let before = model(21).0;
        assert_ne!(host(&before[..1]), host(&cpu[..1]));
    }
}
