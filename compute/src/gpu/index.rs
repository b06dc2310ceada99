//! Row gathers, scatters, top-2 and row selection on the GPU, one thread
//! per output element (per row for top-2). Sums are formed by one thread in
//! index order: deterministic, and bit-identical to the cpu.

use super::{grid, GpuData, Kernel};
use crate::tensor::DType;

const INDEX: &str = include_str!("shaders/index.wgsl");
const TOPK2: &str = include_str!("shaders/topk2.wgsl");

/// Runs an entry of index.wgsl over `n` output elements.
fn run(
    entry: &'static str,
    name: &'static str,
    src: &GpuData,
    idx: &GpuData,
    n: usize,
    width: usize,
    bound: usize,
) -> GpuData {
    let gpu = src.gpu();
    let out = gpu.alloc(DType::F32, n);
    let kernel = Kernel {
        name,
        source: INDEX,
        entry,
    };
    let params = [n as u32, width as u32, bound as u32];
    gpu.dispatch(&kernel, &[src, idx, &out], &params, grid(n));
    out
}

/// `out[r, j] = x[r, idx[r, j]]` for x of `cols` columns, idx of `k`.
pub fn gather_rows(x: &GpuData, cols: usize, idx: &GpuData, k: usize) -> GpuData {
    run(
        "gather_rows",
        "index.gather_rows",
        x,
        idx,
        idx.len(),
        k,
        cols,
    )
}

/// `out[r, idx[r, j]] += d[r, j]` for d and idx of `rows` rows of `k`,
/// into rows of `cols` columns.
pub fn scatter_rows(d: &GpuData, idx: &GpuData, [rows, k]: [usize; 2], cols: usize) -> GpuData {
    run(
        "scatter_rows",
        "index.scatter_rows",
        d,
        idx,
        rows * cols,
        k,
        cols,
    )
}

/// Rows `idx` of x (`rows` rows of `row` elements).
pub fn index_select(x: &GpuData, rows: usize, row: usize, idx: &GpuData) -> GpuData {
    run(
        "index_select",
        "index.index_select",
        x,
        idx,
        idx.len() * row,
        row,
        rows,
    )
}

/// `out[idx[j]] += d[j]` into `rows` rows of `row` elements.
pub fn index_add(d: &GpuData, idx: &GpuData, rows: usize, row: usize) -> GpuData {
    run(
        "index_add",
        "index.index_add",
        d,
        idx,
        rows * row,
        row,
        idx.len(),
    )
}

/// The two largest values of each row of `cols` columns (f32) and their
/// columns (i32), first on ties.
pub fn topk2(x: &GpuData, cols: usize) -> (GpuData, GpuData) {
    let gpu = x.gpu();
    let rows = x.len() / cols;
    let (vals, idx) = (
        gpu.alloc(DType::F32, 2 * rows),
        gpu.alloc(DType::I32, 2 * rows),
    );
    let kernel = Kernel {
        name: "topk2",
        source: TOPK2,
        entry: "topk2",
    };
    gpu.dispatch(
        &kernel,
        &[x, &vals, &idx],
        &[rows as u32, cols as u32],
        grid(rows),
    );
    (vals, idx)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{host_f32, pair, run_both, values};
    use crate::error::Error;
    use crate::ffi::run_op;
    use crate::registry::with_registry;
    use crate::tensor::{Device, Tensor};

    fn floats(shape: &[usize], seed: u32) -> (u32, u32) {
        let n = shape.iter().product();
        pair(Tensor::from_f32(shape.to_vec(), values(n, seed)))
    }

    /// Indices in 0..bound, with repeats.
    fn ints(shape: &[usize], bound: usize, seed: u32) -> (u32, u32) {
        let n = shape.iter().product();
        let v = values(n, seed)
            .into_iter()
            .map(|v| (((v + 1.0) * 0.5 * bound as f32) as i32).min(bound as i32 - 1))
            .collect();
        pair(Tensor::from_i32(shape.to_vec(), v))
    }

    /// Every output of `op` on both devices, bit for bit: gathers copy, and
    /// sums are formed in the cpu's order by one thread.
    fn assert_same(op: &str, ins: &[(u32, u32)], params: &[f64]) {
        let (c, g): (Vec<u32>, Vec<u32>) = ins.iter().copied().unzip();
        for (shape, c, g) in run_both(op, &c, &g, params) {
            assert_eq!(c, g, "{op} {shape:?}");
        }
    }

    #[test]
    fn gathers_and_scatters_match_cpu_bit_for_bit() {
        // 37 rows of 11 columns; 5 indices a row into 6 columns collide.
        assert_same(
            "gather_rows",
            &[floats(&[37, 11], 1), ints(&[37, 3], 11, 2)],
            &[],
        );
        assert_same(
            "scatter_rows",
            &[floats(&[37, 5], 3), ints(&[37, 5], 6, 4)],
            &[6.0],
        );
        assert_same(
            "index_select",
            &[floats(&[20, 3, 4], 5), ints(&[45], 20, 6)],
            &[],
        );
        // 45 rows added into 23: repeats, and rows no index names (zeros).
        assert_same(
            "index_add",
            &[floats(&[45, 3, 4], 7), ints(&[45], 20, 8)],
            &[23.0],
        );
    }

    #[test]
    fn topk2_breaks_ties_like_the_cpu() {
        // 300 rows of 13 values on 3 levels: ties everywhere.
        let v = values(300 * 13, 9)
            .into_iter()
            .map(|v| (v * 1.5).round())
            .collect();
        let x = pair(Tensor::from_f32(vec![300, 13], v));
        let outs = run_both("topk2", &[x.0], &[x.1], &[]);
        assert_eq!(outs.len(), 2);
        for (shape, c, g) in outs {
            assert_eq!(shape, vec![300, 2]);
            assert_eq!(c, g);
        }
    }

    #[test]
    fn out_of_range_indices_read_nan_and_add_nothing_on_the_gpu() {
        let x = floats(&[2, 3], 10);
        let idx = pair(Tensor::from_i32(vec![2, 1], vec![3, -1])).1;
        let out = run_op("gather_rows", &[x.1, idx], &[], Device::Gpu).unwrap()[0];
        assert!(with_registry(|r| host_f32(r.get(out).unwrap()))
            .iter()
            .all(|v| v.is_nan()));
        let d = pair(Tensor::from_f32(vec![2, 1], vec![1.0, 2.0])).1;
        let idx = pair(Tensor::from_i32(vec![2], vec![0, 5])).1;
        let out = run_op("index_add", &[d, idx], &[2.0], Device::Gpu).unwrap()[0];
        assert_eq!(
            with_registry(|r| host_f32(r.get(out).unwrap())),
            vec![1.0, 0.0]
        );
    }

    #[test]
    fn bad_inputs_are_refused_on_the_gpu() {
        let (x, idx) = (floats(&[4, 3], 11).1, floats(&[4, 1], 12).1);
        let err = run_op("gather_rows", &[x, idx], &[], Device::Gpu).unwrap_err();
        assert_eq!(err.to_string(), "gather_rows: input 1 must be i32, got f32");
        let narrow = floats(&[4, 1], 13).1;
        let err = run_op("topk2", &[narrow], &[], Device::Gpu).unwrap_err();
        assert!(matches!(err, Error::Shape { .. }), "{err}");
    }
}
