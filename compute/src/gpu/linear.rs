//! Fully connected layer on the GPU through the tiled GEMM.

use super::gemm::{self, Dims, Gemm};
use crate::error::Result;
use crate::ops::Args;
use crate::tensor::{DType, Tensor};

static MATMUL: Gemm = Gemm::new(
    ["matmul.16x256", "matmul.32x128", "matmul.64x64"],
    include_str!("shaders/matmul.wgsl"),
);

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
    gemm::dispatch(gpu, &MATMUL, &buffers, Dims::whole(n, fout, fin), &words);
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
        &MATMUL,
        &[dy, w, dy, &dx],
        Dims::whole(n, fin, fout),
        &dx_words,
    );
    let dw_words = words(tr(fout), rm(fin), false);
    gemm::dispatch(
        gpu,
        &MATMUL,
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
    use super::{gemm, rm, words, Dims, MATMUL};
    use crate::gpu::testing::{host_f32, max_rel_diff, pair, run_both, values};
    use crate::tensor::{DType, Tensor};

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
    fn tiles_past_one_row_of_workgroups_continue_on_the_next() {
        // Rows of 3 workgroups: N's tiles wrap onto several rows of y, for
        // each tile shape (M of 5, 20 and 50), against an f64 reference.
        let gpu = crate::gpu::testing::gpu();
        let (n, k) = (1000, 20);
        for m in [5, 20, 50] {
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            let upload = |v: &[f32]| {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                gpu.upload(DType::F32, &bytes)
            };
            let (ag, bg, c) = (upload(&a), upload(&b), gpu.alloc(DType::F32, m * n));
            let d = Dims::whole(m, n, k).with_max_x(3);
            let words = words(rm(k), rm(n), false);
            gemm::dispatch(&gpu, &MATMUL, &[&ag, &bg, &ag, &c], d, &words);
            let got = host_f32(&Tensor::from_gpu(vec![m, n], c));
            let want: Vec<f32> = (0..m * n)
                .map(|i| {
                    let (r, col) = (i / n, i % n);
                    let s: f64 = (0..k)
                        .map(|j| a[r * k + j] as f64 * b[j * n + col] as f64)
                        .sum();
                    s as f32
                })
                .collect();
            assert!(max_rel_diff(&want, &got) <= TOL, "m = {m}");
        }
    }
}
