//! Per-class statistics of logits on the GPU: a pass over the rows, then a
//! workgroup per class summing over the rows in a fixed order.

use super::{grid, GpuData, Kernel};
use crate::tensor::DType;

const SOURCE: &str = include_str!("shaders/certify.wgsl");

const fn kernel(name: &'static str, entry: &'static str) -> Kernel {
    Kernel {
        name,
        source: SOURCE,
        entry,
    }
}

const ARGMAX_ROWS: Kernel = kernel("certify.argmax_rows", "argmax_rows");
const VOTES: Kernel = kernel("certify.votes", "votes");
const SOFTMAX_ROWS: Kernel = kernel("certify.softmax_rows", "softmax_rows");
const CLASS_SUMS: Kernel = kernel("certify.class_sums", "class_sums");

/// One workgroup per class (a 2-D grid past 65,535 classes).
fn per_class(cols: usize) -> [u32; 3] {
    let cols = cols as u32;
    [cols.min(65_535), cols.div_ceil(65_535), 1]
}

/// How many rows of `z` [rows, cols] pick each class (first maximum on ties).
pub fn argmax_counts(z: &GpuData, rows: usize, cols: usize) -> GpuData {
    let gpu = z.gpu();
    let out = gpu.alloc(DType::F32, cols);
    if cols == 0 {
        return out;
    }
    let best = gpu.alloc(DType::F32, rows);
    let params = [rows as u32, cols as u32];
    gpu.dispatch(&ARGMAX_ROWS, &[z, &best], &params, grid(rows));
    gpu.dispatch(&VOTES, &[&best, &out], &params, per_class(cols));
    out
}

/// Sums, then sums of squares, of softmax(beta * z) over the rows of z
/// [rows, cols]: [2 * cols].
pub fn softmax_stats(z: &GpuData, rows: usize, cols: usize, beta: f32) -> GpuData {
    let gpu = z.gpu();
    let out = gpu.alloc(DType::F32, 2 * cols);
    if cols == 0 {
        return out;
    }
    let probs = gpu.alloc(DType::F32, rows * cols);
    let params = [rows as u32, cols as u32, super::f(beta)];
    gpu.dispatch(&SOFTMAX_ROWS, &[z, &probs], &params, grid(rows));
    gpu.dispatch(&CLASS_SUMS, &[&probs, &out], &params, per_class(cols));
    out
}

#[cfg(test)]
mod tests {
    use crate::ffi::run_op;
    use crate::gpu::testing::{max_rel_diff, pair, run_both, values};
    use crate::tensor::{Device, Tensor};

    /// Logits [rows, cols] on both devices; `levels` > 0 rounds them to
    /// that many steps per unit, so rows have tied maxima.
    fn logits(rows: usize, cols: usize, levels: f32) -> (u32, u32) {
        let mut v = values(rows * cols, 11);
        if levels > 0.0 {
            v.iter_mut()
                .for_each(|x| *x = (*x * levels).round() / levels);
        }
        pair(Tensor::from_f32(vec![rows, cols], v))
    }

    #[test]
    fn argmax_counts_match_cpu_exactly() {
        // 1,000 rows (not a multiple of the workgroup) of 7 classes, rounded
        // to five levels so many rows tie: the first maximum must win. Counts
        // are integers: no tolerance.
        let (c, g) = logits(1000, 7, 1.5);
        for (shape, c, g) in run_both("argmax_counts", &[c], &[g], &[]) {
            assert_eq!(shape, vec![7]);
            assert_eq!(c.iter().sum::<f32>(), 1000.0);
            assert_eq!(c, g);
        }
    }

    #[test]
    fn softmax_stats_match_cpu() {
        // The cpu sums in f64, the gpu in f32 (a thread's strided sum, then
        // a tree), and exp and the division round differently: measured
        // 9.5e-8 * (1 + |cpu|) on lavapipe; 2e-6 allows for longer sums and
        // a hardware exp (WGSL allows 3 + 2|x| ulp).
        let (c, g) = logits(777, 10, 0.0);
        for (shape, c, g) in run_both("softmax_stats", &[c], &[g], &[3.0]) {
            assert_eq!(shape, vec![2, 10]);
            let err = max_rel_diff(&c, &g);
            assert!(err <= 2e-6, "max error {err}");
        }
    }

    #[test]
    fn i32_logits_are_refused_on_the_gpu_as_on_the_cpu() {
        let (c, g) = pair(Tensor::from_i32(vec![2, 3], vec![0; 6]));
        for (h, device) in [(c, Device::Cpu), (g, Device::Gpu)] {
            let err = run_op("argmax_counts", &[h], &[], device).unwrap_err();
            assert_eq!(
                err.to_string(),
                "argmax_counts: input 0 must be f32, got i32"
            );
        }
    }
}
