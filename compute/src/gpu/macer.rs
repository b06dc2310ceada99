//! MACER's keep mask on the GPU.

use super::{f, grid, Kernel};
use crate::error::Result;
use crate::ops::Args;
use crate::tensor::{DType, Tensor};

const KEEP: Kernel = Kernel {
    name: "macer.keep",
    source: include_str!("shaders/macer.wgsl"),
    entry: "main",
};

/// See the `macer_keep` op.
pub fn macer_keep(a: &mut Args) -> Result<Vec<Tensor>> {
    let (q, top, labels) = (
        a.ins[0].gpu(a.op, 0)?,
        a.ins[1].gpu(a.op, 1)?,
        a.ins[2].gpu(a.op, 2)?,
    );
    let n = labels.len();
    let gpu = q.gpu();
    let keep = gpu.alloc(DType::F32, n);
    let gamma = a.param(0, "gamma")? as f32;
    gpu.dispatch(
        &KEEP,
        &[q, top, labels, &keep],
        &[n as u32, f(gamma)],
        grid(n),
    );
    Ok(vec![Tensor::from_gpu(vec![n, 1], keep)])
}

#[cfg(test)]
mod tests {
    use crate::gpu::testing::{pair, run_both};
    use crate::tensor::Tensor;

    #[test]
    fn keep_mask_matches_cpu_on_every_case() {
        // Image by image: kept; top class not the label; gap too wide; gap
        // infinite (p1 = 1); gap NaN (both infinite); gap exactly gamma (kept);
        // then 300 more images past one workgroup. Exact: a 0/1 decision.
        let inf = f32::INFINITY;
        let mut q = vec![
            0.5, -0.5, 0.5, -0.5, 5.0, -4.0, inf, 0.0, inf, inf, 4.0, -4.0,
        ];
        let mut top = vec![3, 1, 2, 3, 0, 1, 4, 5, 6, 7, 8, 9];
        let mut labels = vec![3, 3, 0, 4, 6, 8];
        for b in 0..300 {
            q.extend([(b as f32) / 30.0, 0.0]);
            top.extend([b % 3, 9]);
            labels.push(b % 2);
        }
        let n = labels.len();
        let (qc, qg) = pair(Tensor::from_f32(vec![n, 2], q));
        let (tc, tg) = pair(Tensor::from_i32(vec![n, 2], top));
        let (lc, lg) = pair(Tensor::from_i32(vec![n, 1], labels));
        let out = run_both("macer_keep", &[qc, tc, lc], &[qg, tg, lg], &[8.0]);
        let (_, cpu, gpu) = &out[0];
        assert_eq!(&cpu[..6], &[1.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(cpu, gpu);
        assert!(cpu[6..].contains(&1.0) && cpu[6..].contains(&0.0));
    }
}
