//! Fully connected layer `y = x W^T + b` on the CPU.

use super::gemm::{matmul, Mat};
use crate::error::Result;
use crate::ops::Args;
use crate::tensor::Tensor;

/// Inputs: x [n, in], w [out, in], optional b [out] (shapes checked).
pub fn linear(a: &mut Args, (n, fin, fout): (usize, usize, usize)) -> Result<Vec<Tensor>> {
    let mut y = crate::buffers::uninit_f32(n * fout);
    matmul(
        Mat::rm(a.f32(0)?, n, fin),
        Mat::tr(a.f32(1)?, fin, fout),
        &mut y,
        false,
        true,
    );
    if a.ins.len() == 3 {
        let b = a.f32(2)?;
        y.chunks_mut(fout)
            .for_each(|r| r.iter_mut().zip(b).for_each(|(v, b)| *v += b));
    }
    Ok(vec![Tensor::from_f32(vec![n, fout], y)])
}

/// Inputs: x, w, dy [n, out]. Outputs: dx [n, in], dw [out, in], db [out].
pub fn linear_backward(a: &mut Args, (n, fin, fout): (usize, usize, usize)) -> Result<Vec<Tensor>> {
    let (x, w, dy) = (a.f32(0)?, a.f32(1)?, a.f32(2)?);
    let mut dx = crate::buffers::uninit_f32(n * fin);
    matmul(
        Mat::rm(dy, n, fout),
        Mat::rm(w, fout, fin),
        &mut dx,
        false,
        true,
    );
    let mut dw = crate::buffers::uninit_f32(fout * fin);
    matmul(
        Mat::tr(dy, fout, n),
        Mat::rm(x, n, fin),
        &mut dw,
        false,
        true,
    );
    let mut db = vec![0f32; fout];
    dy.chunks(fout)
        .for_each(|r| db.iter_mut().zip(r).for_each(|(b, v)| *b += v));
    Ok(vec![
        Tensor::from_f32(vec![n, fin], dx),
        Tensor::from_f32(vec![fout, fin], dw),
        Tensor::from_f32(vec![fout], db),
    ])
}
