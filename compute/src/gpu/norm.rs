//! Batch norm kernels on the GPU. Per-channel statistics and gradient sums
//! take one workgroup per channel and a fixed-order tree reduction in
//! workgroup memory (no float atomics, so results are reproducible); the
//! elementwise passes run one thread per element.

use std::sync::Arc;

use super::{f, grid, Gpu, GpuData, Kernel};
use crate::cpu::norm::unbias;
use crate::error::Result;
use crate::ops::Args;
use crate::tensor::{DType, Tensor};

const STATS: Kernel = Kernel {
    name: "norm_stats",
    source: concat!(
        include_str!("shaders/norm_channel_sums.wgsl"),
        include_str!("shaders/norm_stats.wgsl")
    ),
    entry: "stats",
};
const FINISH: Kernel = Kernel {
    name: "norm_finish",
    source: include_str!("shaders/norm_finish.wgsl"),
    entry: "finish",
};
const APPLY: Kernel = Kernel {
    name: "norm_apply",
    source: include_str!("shaders/norm_apply.wgsl"),
    entry: "apply",
};
const GRAD_SUMS: Kernel = Kernel {
    name: "norm_grad_sums",
    source: concat!(
        include_str!("shaders/norm_channel_sums.wgsl"),
        include_str!("shaders/norm_grad_sums.wgsl")
    ),
    entry: "grad_sums",
};
const DX: Kernel = Kernel {
    name: "norm_dx",
    source: include_str!("shaders/norm_dx.wgsl"),
    entry: "dx_pass",
};

/// `[n, c, hw]` of x (input 0, checked to be [N, C, H, W] by the op).
fn dims(a: &Args) -> [u32; 3] {
    let s = &a.ins[0].shape;
    [s[0] as u32, s[1] as u32, (s[2] * s[3]) as u32]
}

/// One workgroup per channel (`c` of them), as the reductions expect.
fn per_channel(c: u32) -> [u32; 3] {
    [c, 1, 1]
}

/// Batch mean and biased variance per channel of `x`.
fn channel_stats(gpu: &Arc<Gpu>, x: &GpuData, [n, c, hw]: [u32; 3]) -> (GpuData, GpuData) {
    let mean = gpu.alloc(DType::F32, c as usize);
    let var = gpu.alloc(DType::F32, c as usize);
    gpu.dispatch(&STATS, &[x, &mean, &var], &[n, c, hw], per_channel(c));
    (mean, var)
}

/// `y = x * scale[c] + shift[c]`, the transform from `vecs`: (gamma, beta,
/// batch mean, inverse std), or with `eval_eps` (gamma, beta, running mean,
/// running var).
fn apply(
    gpu: &Arc<Gpu>,
    x: &GpuData,
    vecs: [&GpuData; 4],
    [_, c, hw]: [u32; 3],
    eval_eps: Option<f32>,
) -> GpuData {
    let len = x.len();
    let y = gpu.alloc(DType::F32, len);
    let [gamma, beta, mean, spread] = vecs;
    let params = [
        len as u32,
        c,
        hw,
        eval_eps.is_some() as u32,
        f(eval_eps.unwrap_or(0.0)),
    ];
    gpu.dispatch(
        &APPLY,
        &[x, gamma, beta, mean, spread, &y],
        &params,
        grid(len),
    );
    y
}

/// See `ops::norm::batch_norm_train`; the running statistics are updated
/// in their buffers.
pub fn batch_norm_train(a: &mut Args) -> Result<Vec<Tensor>> {
    let d = dims(a);
    let [n, c, hw] = d;
    let momentum = a.param(0, "momentum")? as f32;
    let eps = a.param(1, "eps")? as f32;
    let x = a.ins[0].gpu(a.op, 0)?;
    let gpu = x.gpu().clone();
    let computed = if crate::ops::given_stats(a)? {
        None
    } else {
        Some(channel_stats(&gpu, x, d))
    };
    let (mean, var) = match &computed {
        Some((m, v)) => (m, v),
        None => (a.ins[3].gpu(a.op, 3)?, a.ins[4].gpu(a.op, 4)?),
    };
    let (rm, rv) = (a.muts[0].gpu(a.op, 0)?, a.muts[1].gpu(a.op, 1)?);
    let mean_out = gpu.alloc(DType::F32, c as usize);
    let invstd = gpu.alloc(DType::F32, c as usize);
    let params = [c, f(momentum), f(eps), f(unbias((n * hw) as f32))];
    gpu.dispatch(
        &FINISH,
        &[mean, var, rm, rv, &mean_out, &invstd],
        &params,
        grid(c as usize),
    );
    let (gamma, beta) = (a.ins[1].gpu(a.op, 1)?, a.ins[2].gpu(a.op, 2)?);
    let y = apply(&gpu, x, [gamma, beta, &mean_out, &invstd], d, None);
    Ok(vec![
        Tensor::from_gpu(a.ins[0].shape.clone(), y),
        Tensor::from_gpu(vec![c as usize], mean_out),
        Tensor::from_gpu(vec![c as usize], invstd),
    ])
}

/// See `ops::norm::batch_norm_eval`.
pub fn batch_norm_eval(a: &mut Args) -> Result<Vec<Tensor>> {
    let eps = a.param(0, "eps")? as f32;
    let ins: Vec<&GpuData> = (0..5)
        .map(|i| a.ins[i].gpu(a.op, i))
        .collect::<Result<_>>()?;
    let gpu = ins[0].gpu();
    let y = apply(
        gpu,
        ins[0],
        [ins[1], ins[2], ins[3], ins[4]],
        dims(a),
        Some(eps),
    );
    Ok(vec![Tensor::from_gpu(a.ins[0].shape.clone(), y)])
}

/// See `ops::norm::batch_norm_backward`: the per-channel sums, then dx.
pub fn batch_norm_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    let [n, c, hw] = dims(a);
    let ins: Vec<&GpuData> = (0..5)
        .map(|i| a.ins[i].gpu(a.op, i))
        .collect::<Result<_>>()?;
    let [x, dy, gamma, mean, invstd] = ins[..] else {
        unreachable!("five inputs")
    };
    let gpu = x.gpu();
    let dgamma = gpu.alloc(DType::F32, c as usize);
    let dbeta = gpu.alloc(DType::F32, c as usize);
    let bufs = [x, dy, mean, invstd, &dgamma, &dbeta];
    gpu.dispatch(&GRAD_SUMS, &bufs, &[n, c, hw], per_channel(c));
    let dx = gpu.alloc(DType::F32, x.len());
    let params = [x.len() as u32, c, hw, f(1.0 / (n * hw) as f32)];
    let bufs = [x, dy, gamma, mean, invstd, &dgamma, &dbeta, &dx];
    gpu.dispatch(&DX, &bufs, &params, grid(x.len()));
    let vec_shape = vec![c as usize];
    Ok(vec![
        Tensor::from_gpu(a.ins[0].shape.clone(), dx),
        Tensor::from_gpu(vec_shape.clone(), dgamma),
        Tensor::from_gpu(vec_shape, dbeta),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{host_f32, max_rel_diff, pair, run_both, values};
    use crate::registry::with_registry;
    use crate::tensor::Tensor;

    /// Shapes whose channel counts and per-channel element counts (189, 715,
    /// 646) are not multiples of the 256-thread workgroup: the first leaves
    /// threads idle, the others take several strides per thread; planes
    /// (63, 143, 323 pixels) smaller and larger than one stride.
    const SHAPES: [[usize; 4]; 3] = [[3, 5, 7, 9], [5, 3, 11, 13], [2, 3, 17, 19]];

    /// A cpu tensor and its gpu copy of `shape`, values `scale * v + offset`.
    fn pair_of(shape: &[usize], seed: u32, scale: f32, offset: f32) -> (u32, u32) {
        let n = shape.iter().product();
        let v = values(n, seed).iter().map(|x| scale * x + offset).collect();
        pair(Tensor::from_f32(shape.to_vec(), v))
    }

    fn host(handle: u32) -> Vec<f32> {
        with_registry(|r| host_f32(r.get(handle).unwrap()))
    }

    /// Checks every output of `op` to `tol` by [`max_rel_diff`].
    fn compare(op: &str, cpu: &[u32], gpu: &[u32], params: &[f64], tol: f32) {
        for (i, (shape, c, g)) in run_both(op, cpu, gpu, params).iter().enumerate() {
            // max_rel_diff passes NaN over: finite values are required.
            assert!(g.iter().all(|v| v.is_finite()), "{op} output {i}");
            let d = max_rel_diff(c, g);
            assert!(d <= tol, "{op} output {i} {shape:?}: differs by {d}");
        }
    }

    #[test]
    fn batch_norm_train_matches_cpu_and_updates_running_stats() {
        for shape in SHAPES {
            let c = [shape[1]];
            for given in [false, true] {
                // Offset from 0 so the mean is large against the spread.
                let x = pair_of(&shape, 1, 1.0, 3.0);
                let (gamma, beta) = (pair_of(&c, 2, 0.5, 1.0), pair_of(&c, 3, 0.3, 0.0));
                let (rm, rv) = (pair_of(&c, 4, 0.2, 0.0), pair_of(&c, 5, 0.2, 1.0));
                let mut cpu = vec![rm.0, rv.0, x.0, gamma.0, beta.0];
                let mut gpu = vec![rm.1, rv.1, x.1, gamma.1, beta.1];
                if given {
                    let (mean, var) = (pair_of(&c, 6, 0.5, 0.0), pair_of(&c, 7, 0.3, 0.8));
                    cpu.extend([mean.0, var.0]);
                    gpu.extend([mean.1, var.1]);
                }
                let before = host(rm.0);
                // f32 tree sums over up to 715 terms (gpu) against f64 lane
                // sums (cpu): statistics agree to a few ulps, y with them.
                compare(
                    "batch_norm_train",
                    &cpu,
                    &gpu,
                    &[0.1, 1e-5, given as u8 as f64],
                    2e-5,
                );
                assert_ne!(host(rm.0), before, "running mean not updated");
                for (h_cpu, h_gpu) in [rm, rv] {
                    let d = max_rel_diff(&host(h_cpu), &host(h_gpu));
                    assert!(
                        d <= 2e-5,
                        "running statistics differ by {d} (given {given})"
                    );
                }
            }
        }
    }

    #[test]
    fn batch_norm_eval_matches_cpu() {
        for shape in SHAPES {
            let c = [shape[1]];
            let x = pair_of(&shape, 1, 2.0, 0.5);
            let vecs = [(2, 0.5, 1.0), (3, 0.3, 0.0), (4, 0.2, 0.0), (5, 0.2, 1.0)]
                .map(|(seed, s, o)| pair_of(&c, seed, s, o));
            let cpu = [x.0, vecs[0].0, vecs[1].0, vecs[2].0, vecs[3].0];
            let gpu = [x.1, vecs[0].1, vecs[1].1, vecs[2].1, vecs[3].1];
            // Same formulas; WGSL's sqrt and division may be off by ulps.
            compare("batch_norm_eval", &cpu, &gpu, &[1e-5], 1e-5);
        }
    }

    #[test]
    fn batch_norm_backward_matches_cpu_and_is_deterministic() {
        for shape in SHAPES {
            let c = [shape[1]];
            let (x, dy) = (pair_of(&shape, 1, 1.0, 0.5), pair_of(&shape, 2, 1.0, 0.2));
            let gamma = pair_of(&c, 3, 0.5, 1.0);
            let (mean, invstd) = (pair_of(&c, 4, 0.1, 0.5), pair_of(&c, 5, 0.3, 1.5));
            let cpu = [x.0, dy.0, gamma.0, mean.0, invstd.0];
            let gpu = [x.1, dy.1, gamma.1, mean.1, invstd.1];
            // Sums of up to 715 terms of order 1, f32 tree against f64.
            compare("batch_norm_backward", &cpu, &gpu, &[], 1e-4);
            let runs: Vec<Vec<Vec<f32>>> = (0..2)
                .map(|_| {
                    let out = run_both("batch_norm_backward", &cpu, &gpu, &[]);
                    out.into_iter().map(|(_, _, g)| g).collect()
                })
                .collect();
            assert_eq!(runs[0], runs[1], "two gpu runs differ");
        }
    }
}
