//! Reductions on the GPU: long lanes are summed by a workgroup with a tree
//! in workgroup memory, so no thread walks a long lane alone (a workgroup a
//! lane, or a tile of neighbouring columns); short lanes by a thread each.

use super::{f, grid, GpuData, Kernel, WORKGROUP};
use crate::tensor::DType;

const REDUCE: &str = concat!(
    include_str!("shaders/reduce.wgsl"),
    include_str!("shaders/tree.wgsl")
);

/// Lanes shorter than this are summed by one thread each, in order.
const SHORT_LANE: usize = 64;

/// Lanes a `sum_columns` workgroup sums side by side (`TILE_X`), when
/// lanes are columns at least this many wide: neighbouring threads then
/// read neighbouring floats.
const COLUMN_TILE: usize = 32;

/// Workgroups of the sum_all pass (the second pass sums their partials).
const SUM_ALL_GROUPS: usize = 1024;

fn kernel(entry: &'static str, name: &'static str) -> Kernel {
    Kernel {
        name,
        source: REDUCE,
        entry,
    }
}

/// `count` workgroups of a one-workgroup-per-item kernel, on the same 2-D
/// grid as [`grid`] (the kernel finds its item as `wid.x + wid.y * nwg.x`).
pub fn groups(count: usize) -> [u32; 3] {
    grid(count * WORKGROUP as usize)
}

/// `scale * x.sum(dim)` for `x` split as (outer, size, inner).
pub fn sum_dim(x: &GpuData, outer: usize, size: usize, inner: usize, scale: f32) -> GpuData {
    let gpu = x.gpu();
    let lanes = outer * inner;
    let out = gpu.alloc(DType::F32, lanes);
    if lanes == 0 {
        return out;
    }
    let params = [lanes as u32, size as u32, inner as u32, f(scale)];
    if size < SHORT_LANE {
        let k = kernel("sum_short_lanes", "reduce.sum_short_lanes");
        gpu.dispatch(&k, &[x, &out], &params, grid(lanes));
    } else if inner >= COLUMN_TILE {
        let k = kernel("sum_columns", "reduce.sum_columns");
        let params = [outer as u32, size as u32, inner as u32, f(scale)];
        let tiles = outer * inner.div_ceil(COLUMN_TILE);
        gpu.dispatch(&k, &[x, &out], &params, groups(tiles));
    } else {
        let k = kernel("sum_lanes", "reduce.sum_lanes");
        gpu.dispatch(&k, &[x, &out], &params, groups(lanes));
    }
    out
}

/// `scale * x` repeated `size` times along a dimension inserted between
/// `outer` and `inner`.
pub fn expand_dim(x: &GpuData, outer: usize, size: usize, inner: usize, scale: f32) -> GpuData {
    let gpu = x.gpu();
    let n = outer * size * inner;
    let out = gpu.alloc(DType::F32, n);
    let params = [n as u32, size as u32, inner as u32, f(scale)];
    gpu.dispatch(
        &kernel("expand", "reduce.expand"),
        &[x, &out],
        &params,
        grid(n),
    );
    out
}

/// The sum of all elements: partial sums of up to [`SUM_ALL_GROUPS`]
/// workgroups, then one workgroup over those.
pub fn sum_all(x: &GpuData) -> GpuData {
    let gpu = x.gpu();
    let k = kernel("sum_all", "reduce.sum_all");
    let out = gpu.alloc(DType::F32, 1);
    let parts = x
        .len()
        .div_ceil(WORKGROUP as usize)
        .clamp(1, SUM_ALL_GROUPS);
    if parts == 1 {
        gpu.dispatch(&k, &[x, &out], &[x.len() as u32, 0, 0, 0], [1, 1, 1]);
        return out;
    }
    let partial = gpu.alloc(DType::F32, parts);
    gpu.dispatch(
        &k,
        &[x, &partial],
        &[x.len() as u32, 0, 0, 0],
        [parts as u32, 1, 1],
    );
    gpu.dispatch(&k, &[&partial, &out], &[parts as u32, 0, 0, 0], [1, 1, 1]);
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::{max_rel_diff, pair, run_both, values};
    use crate::error::Error;
    use crate::ffi::run_op;
    use crate::tensor::{Device, Tensor};

    fn input(shape: &[usize], seed: u32) -> (u32, u32) {
        let n = shape.iter().product();
        pair(Tensor::from_f32(shape.to_vec(), values(n, seed)))
    }

    fn one(op: &str, x: (u32, u32), params: &[f64]) -> (Vec<usize>, Vec<f32>, Vec<f32>) {
        run_both(op, &[x.0], &[x.1], params).remove(0)
    }

    #[test]
    fn short_lanes_sum_in_the_cpu_order_bit_for_bit() {
        // Lanes under 64 elements: one thread each, summing in order.
        let x = input(&[3, 70, 5], 1);
        for dim in [0.0, 2.0] {
            let (_, c, g) = one("sum_dim", x, &[dim, 0.5]);
            assert_eq!(c, g, "dim {dim}");
        }
    }

    #[test]
    fn long_lanes_sum_by_tree_within_1e_5() {
        // A tree sums in another order than the cpu's running sum: the two
        // differ by a few roundings of partial sums (|sum| < 300 here).
        for (shape, dim) in [
            (&[3, 70, 5][..], 1.0),
            (&[2, 1000][..], 1.0),
            (&[1000, 3][..], 0.0),
            // Columns 32 or more wide: tiles of 32, the last one partial.
            (&[300, 70][..], 0.0),
            (&[2, 100, 40][..], 1.0),
        ] {
            let (_, c, g) = one("sum_dim", input(shape, 2), &[dim, 1.5]);
            assert!(
                max_rel_diff(&c, &g) <= 1e-5,
                "{shape:?} dim {dim}: {}",
                max_rel_diff(&c, &g)
            );
            assert!(
                c.iter().any(|&v| v.abs() > 1.0),
                "{shape:?}: sums are not all tiny"
            );
        }
    }

    #[test]
    fn more_lanes_than_one_grid_row_holds() {
        // 65,600 lanes of 64: tree workgroups on a 2-D grid (65,535 along x).
        let (_, c, g) = one("sum_dim", input(&[65_600, 64], 6), &[1.0]);
        assert!(max_rel_diff(&c, &g) <= 1e-5, "{}", max_rel_diff(&c, &g));
    }

    #[test]
    fn expand_dim_matches_cpu_bit_for_bit() {
        let x = input(&[3, 5], 3);
        for dim in [0.0, 1.0, 2.0] {
            let (shape, c, g) = one("expand_dim", x, &[dim, 7.0, -0.5]);
            assert_eq!(shape.iter().product::<usize>(), 105);
            assert_eq!(c, g, "dim {dim}");
        }
    }

    #[test]
    fn sum_all_matches_the_f64_cpu_within_1e_6_of_the_absolute_sum() {
        // One pass (1 and 300 elements), two passes (100,003: 391 partial
        // sums) and grid-strided partials (300,000: 1,024 workgroups). The
        // f32 tree's error is bounded by a few ulp of the sum of |x|.
        for n in [1, 300, 100_003, 300_000] {
            let v = values(n, 4);
            let abs: f32 = v.iter().map(|x| x.abs()).sum();
            let (_, c, g) = one("sum_all", pair(Tensor::from_f32(vec![n], v)), &[]);
            assert!(
                (c[0] - g[0]).abs() <= 1e-6 * abs,
                "{n}: {} vs {}",
                c[0],
                g[0]
            );
        }
    }

    #[test]
    fn bad_inputs_are_refused_on_the_gpu() {
        let x = input(&[3, 5], 5).1;
        let err = run_op("sum_dim", &[x], &[2.0], Device::Gpu).unwrap_err();
        assert!(matches!(err, Error::Param { .. }), "{err}");
        let ints = pair(Tensor::from_i32(vec![2], vec![1, 2])).1;
        let err = run_op("sum_all", &[ints], &[], Device::Gpu).unwrap_err();
        assert_eq!(err.to_string(), "sum_all: input 0 must be f32, got i32");
    }
}
