//! Row gathers and scatters, top-2, and row selection on host slices. The
//! indices are checked here (an out-of-range index is an error naming `op`).

use crate::error::{param_err, Result};

fn check_index(op: &'static str, i: i32, bound: usize) -> Result<usize> {
    if i < 0 || i as usize >= bound {
        return param_err(op, format!("index {i} out of range 0..{bound}"));
    }
    Ok(i as usize)
}

/// `out[r, j] = x[r, idx[r, j]]` for x of `cols` columns, idx of `k`.
pub fn gather_rows(
    op: &'static str,
    x: &[f32],
    cols: usize,
    idx: &[i32],
    k: usize,
) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(idx.len());
    for (r, row) in idx.chunks(k.max(1)).enumerate() {
        for &i in row {
            out.push(x[r * cols + check_index(op, i, cols)?]);
        }
    }
    Ok(out)
}

/// `out[r, idx[r, j]] += d[r, j]` for d and idx of `rows` rows of `k`,
/// into rows of `cols` columns.
pub fn scatter_rows(
    op: &'static str,
    d: &[f32],
    idx: &[i32],
    [rows, k]: [usize; 2],
    cols: usize,
) -> Result<Vec<f32>> {
    let mut out = crate::buffers::zeros_f32(rows * cols);
    for r in 0..rows {
        for j in 0..k {
            let c = check_index(op, idx[r * k + j], cols)?;
            out[r * cols + c] += d[r * k + j];
        }
    }
    Ok(out)
}

/// The two largest values of each row of `cols` columns and their columns
/// (first on ties).
pub fn topk2(x: &[f32], cols: usize) -> (Vec<f32>, Vec<i32>) {
    let rows = x.len() / cols;
    let (mut vals, mut idx) = (Vec::with_capacity(2 * rows), Vec::with_capacity(2 * rows));
    for row in x.chunks(cols) {
        let (mut i1, mut i2) = (0usize, usize::MAX);
        for c in 1..cols {
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
    (vals, idx)
}

/// Rows `idx` of x (`rows` rows of `row` elements).
pub fn index_select(
    op: &'static str,
    x: &[f32],
    rows: usize,
    row: usize,
    idx: &[i32],
) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(idx.len() * row);
    for &i in idx {
        let r = check_index(op, i, rows)?;
        out.extend_from_slice(&x[r * row..(r + 1) * row]);
    }
    Ok(out)
}

/// `out[idx[j]] += d[j]` into `rows` rows of `row` elements.
pub fn index_add(
    op: &'static str,
    d: &[f32],
    idx: &[i32],
    rows: usize,
    row: usize,
) -> Result<Vec<f32>> {
    let mut out = crate::buffers::zeros_f32(rows * row);
    for (j, &i) in idx.iter().enumerate() {
        let r = check_index(op, i, rows)?;
        out[r * row..(r + 1) * row]
            .iter_mut()
            .zip(&d[j * row..(j + 1) * row])
            .for_each(|(o, v)| *o += v);
    }
    Ok(out)
}
