//! Row gathers and scatters, top-2, and row selection (masked selection is
//! an index_select with the kept row numbers).

use super::Args;
use crate::error::{param_err, shape_err, Result};
use crate::tensor::Tensor;

fn check_index(a: &Args, i: i32, bound: usize) -> Result<usize> {
    if i < 0 || i as usize >= bound {
        return param_err(a.op, format!("index {i} out of range 0..{bound}"));
    }
    Ok(i as usize)
}

/// `out[r, j] = x[r, idx[r, j]]`. Inputs: x [n, C], idx i32 [n, k].
pub fn gather_rows(a: &mut Args) -> Result<Vec<Tensor>> {
    let xs = a.rank(0, 2)?.to_vec();
    let is = a.rank(1, 2)?.to_vec();
    if is[0] != xs[0] {
        return shape_err(
            a.op,
            format!("{} rows of x, {} rows of indices", xs[0], is[0]),
        );
    }
    let (x, idx) = (a.f32(0)?, a.i32(1)?);
    let mut out = Vec::with_capacity(is[0] * is[1]);
    for r in 0..is[0] {
        for j in 0..is[1] {
            let c = check_index(a, idx[r * is[1] + j], xs[1])?;
            out.push(x[r * xs[1] + c]);
        }
    }
    Ok(vec![Tensor::from_f32(is, out)])
}

/// Adjoint of gather_rows: `out[r, idx[r, j]] += d[r, j]`. Inputs: d, idx. Params: C.
pub fn scatter_rows(a: &mut Args) -> Result<Vec<Tensor>> {
    let ds = a.rank(0, 2)?.to_vec();
    if a.input(1).shape != ds {
        return shape_err(
            a.op,
            format!("values {ds:?} vs indices {:?}", a.input(1).shape),
        );
    }
    let cols = a.positive(0, "columns")?;
    let (d, idx) = (a.f32(0)?, a.i32(1)?);
    let mut out = crate::buffers::zeros_f32(ds[0] * cols);
    for r in 0..ds[0] {
        for j in 0..ds[1] {
            let c = check_index(a, idx[r * ds[1] + j], cols)?;
            out[r * cols + c] += d[r * ds[1] + j];
        }
    }
    Ok(vec![Tensor::from_f32(vec![ds[0], cols], out)])
}

/// The two largest values of each row and their columns (first on ties).
/// Input: x [n, C] with C >= 2. Outputs: values [n, 2], indices i32 [n, 2].
pub fn topk2(a: &mut Args) -> Result<Vec<Tensor>> {
    let s = a.rank(0, 2)?.to_vec();
    if s[1] < 2 {
        return shape_err(a.op, format!("need at least 2 columns, got {:?}", s));
    }
    let x = a.f32(0)?;
    let (mut vals, mut idx) = (Vec::with_capacity(2 * s[0]), Vec::with_capacity(2 * s[0]));
    for row in x.chunks(s[1]) {
        let (mut i1, mut i2) = (0usize, usize::MAX);
        for c in 1..s[1] {
            if row[c] > row[i1] {
                i2 = i1;
                i1 = c;
            } else if i2 == usize::MAX || row[c] > row[i2] {
                i2 = c;
            }
        }
        vals.extend([row[i1], row[i2]]);
        idx.extend([i1 as i32, i2 as i32]);
    }
    Ok(vec![
        Tensor::from_f32(vec![s[0], 2], vals),
        Tensor::from_i32(vec![s[0], 2], idx),
    ])
}

/// Rows `idx` of x along dim 0. Inputs: x [n, ...], idx i32 [m].
pub fn index_select(a: &mut Args) -> Result<Vec<Tensor>> {
    let xs = a.input(0).shape.clone();
    if xs.is_empty() {
        return shape_err(a.op, "x must have at least one dimension");
    }
    a.rank(1, 1)?;
    let row: usize = xs[1..].iter().product();
    let (x, idx) = (a.f32(0)?, a.i32(1)?);
    let mut out = Vec::with_capacity(idx.len() * row);
    for &i in idx {
        let r = check_index(a, i, xs[0])?;
        out.extend_from_slice(&x[r * row..(r + 1) * row]);
    }
    let mut shape = xs;
    shape[0] = idx.len();
    Ok(vec![Tensor::from_f32(shape, out)])
}

/// Adjoint of index_select: `out[idx[j]] += d[j]`. Inputs: d [m, ...], idx [m]. Params: n.
pub fn index_add(a: &mut Args) -> Result<Vec<Tensor>> {
    let ds = a.input(0).shape.clone();
    if ds.is_empty() || a.rank(1, 1)?[0] != ds[0] {
        return shape_err(
            a.op,
            format!("values {ds:?} vs indices {:?}", a.input(1).shape),
        );
    }
    let n = a.usize(0, "rows")?;
    let row: usize = ds[1..].iter().product();
    let (d, idx) = (a.f32(0)?, a.i32(1)?);
    let mut out = crate::buffers::zeros_f32(n * row);
    for (j, &i) in idx.iter().enumerate() {
        let r = check_index(a, i, n)?;
        out[r * row..(r + 1) * row]
            .iter_mut()
            .zip(&d[j * row..(j + 1) * row])
            .for_each(|(o, v)| *o += v);
    }
    let mut shape = ds;
    shape[0] = n;
    Ok(vec![Tensor::from_f32(shape, out)])
}
