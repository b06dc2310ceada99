//! Fully connected layer on the GPU through the tiled GEMM.

use std::sync::LazyLock;

use super::gemm::{self, Dims};
use super::Kernel;
use crate::error::Result;
use crate::ops::Args;
use crate::tensor::{DType, Tensor};

static MATMUL: LazyLock<String> =
    LazyLock::new(|| gemm::source(include_str!("shaders/matmul.wgsl")));

fn kernel() -> Kernel {
    Kernel {
        name: "gemm.matmul",
        source: MATMUL.as_str(),
        entry: "main",
    }
}

/// Row and column strides of a contiguous `rows x cols` matrix.
fn rm(cols: usize) -> [u32; 2] {
    [cols as u32, 1]
}

/// Row and column strides of the transpose of a contiguous `cols x rows` matrix.
fn tr(rows: usize) -> [u32; 2] {
    [1, rows as u32]
}

/// The kernel's words after the leading four: A's and B's strides, the bias flag.
fn words(a: [u32; 2], b: [u32; 2], bias: bool) -> [u32; 5] {
    [a[0], a[1], b[0], b[1], bias as u32]
}

/// `y = x W^T (+ b)` with x [n, in], w [out, in].
pub fn linear(a: &mut Args, (n, fin, fout): (usize, usize, usize)) -> Result<Vec<Tensor>> {
    let (x, w) = (a.ins[0].gpu(a.op, 0)?, a.ins[1].gpu(a.op, 1)?);
    let bias = match a.ins.get(2) {
        Some(b) => Some(b.gpu(a.op, 2)?),
        None => None,
    };
    let gpu = x.gpu();
    let y = gpu.alloc(DType::F32, n * fout);
    // Without a bias, x stands in for the unread bias binding.
    let buffers = [x, w, bias.unwrap_or(x), &y];
    let words = words(rm(fin), tr(fin), bias.is_some());
    gemm::dispatch(gpu, &kernel(), &buffers, Dims::whole(n, fout, fin), &words);
    Ok(vec![Tensor::from_gpu(vec![n, fout], y)])
}

/// dx = dy W, dw = dy^T x, db = column sums of dy.
pub fn linear_backward(a: &mut Args, (n, fin, fout): (usize, usize, usize)) -> Result<Vec<Tensor>> {
    let (x, w, dy) = (
        a.ins[0].gpu(a.op, 0)?,
        a.ins[1].gpu(a.op, 1)?,
        a.ins[2].gpu(a.op, 2)?,
    );
    let gpu = x.gpu();
    let (dx, dw, db) = (
        gpu.alloc(DType::F32, n * fin),
        gpu.alloc(DType::F32, fout * fin),
        gpu.alloc(DType::F32, fout),
    );
    let dx_words = words(rm(fout), rm(fin), false);
    gemm::dispatch(
        gpu,
        &kernel(),
        &[dy, w, dy, &dx],
        Dims::whole(n, fin, fout),
        &dx_words,
    );
    let dw_words = words(tr(fout), rm(fin), false);
    gemm::dispatch(
        gpu,
        &kernel(),
        &[dy, x, dy, &dw],
        Dims::whole(fout, fin, n),
        &dw_words,
    );
    gemm::channel_sum(gpu, dy, &db, (n, fout, 1));
    Ok(vec![
        Tensor::from_gpu(vec![n, fin], dx),
        Tensor::from_gpu(vec![fout, fin], dw),
        Tensor::from_gpu(vec![fout], db),
    ])
}

#[cfg(test)]
mod tests {
    use crate::gpu::testing::{max_rel_diff, pair, run_both, values};
    use crate::tensor::Tensor;

    /// Summation order differs from the CPU GEMM's (and the GPU may fuse
    /// multiply-adds): about 1e-6 relative for these K; 1e-5 allowed.
    const TOL: f32 = 1e-5;

    fn tensor(shape: &[usize], seed: u32) -> (u32, u32) {
        pair(Tensor::from_f32(
            shape.to_vec(),
            values(shape.iter().product(), seed),
        ))
    }

    fn check(op: &str, cpu: &[u32], gpu: &[u32]) {
        for (i, (shape, c, g)) in run_both(op, cpu, gpu, &[]).iter().enumerate() {
            let d = max_rel_diff(c, g);
            assert!(d <= TOL, "{op} output {i} {shape:?}: {d}");
        }
    }

    #[test]
    fn linear_and_backward_match_cpu() {
        // Sizes off the 64x64 tile and 16-deep K-tile, one spanning two tiles.
        for (n, fin, fout) in [(5, 7, 3), (37, 70, 19), (130, 33, 67)] {
            let (x, xg) = tensor(&[n, fin], 1);
            let (w, wg) = tensor(&[fout, fin], 2);
            let (b, bg) = tensor(&[fout], 3);
            let (dy, dyg) = tensor(&[n, fout], 4);
            check("linear", &[x, w], &[xg, wg]);
            check("linear", &[x, w, b], &[xg, wg, bg]);
            check("linear_backward", &[x, w, dy], &[xg, wg, dyg]);
        }
    }

    #[test]
    fn outputs_past_one_row_of_workgroups() {
        // 65,537 tiles of 64 columns, more than a dispatch's x can hold: the
        // last continues on a second row of y. (About 20 s on lavapipe.)
        let fout = 65_536 * 64 + 100;
        let (x, xg) = tensor(&[2, 1], 1);
        let (w, wg) = tensor(&[fout, 1], 2);
        check("linear", &[x, w], &[xg, wg]);
    }
}
