//! Fully connected layer `y = x W^T + b` (PyTorch's nn.Linear layout).

use super::Args;
use crate::cpu::gemm::{matmul, Mat};
use crate::error::{shape_err, Result};
use crate::tensor::Tensor;

fn dims(a: &Args) -> Result<(usize, usize, usize)> {
    let xs = a.rank(0, 2)?.to_vec();
    let ws = a.rank(1, 2)?.to_vec();
    if xs[1] != ws[1] {
        return shape_err(
            a.op,
            format!(
                "x {xs:?} has {} features, weight {ws:?} takes {}",
                xs[1], ws[1]
            ),
        );
    }
    Ok((xs[0], xs[1], ws[0]))
}

/// Inputs: x [n, in], w [out, in], optional b [out].
pub fn linear(a: &mut Args) -> Result<Vec<Tensor>> {
    let (n, fin, fout) = dims(a)?;
    let mut y = crate::buffers::uninit_f32(n * fout);
    matmul(
        Mat::rm(a.f32(0)?, n, fin),
        Mat::tr(a.f32(1)?, fin, fout),
        &mut y,
        false,
        true,
    );
    if a.ins.len() == 3 {
        if a.input(2).shape != [fout] {
            return shape_err(
                a.op,
                format!("bias {:?} for {fout} outputs", a.input(2).shape),
            );
        }
        let b = a.f32(2)?;
        y.chunks_mut(fout)
            .for_each(|r| r.iter_mut().zip(b).for_each(|(v, b)| *v += b));
    }
    Ok(vec![Tensor::from_f32(vec![n, fout], y)])
}

/// Inputs: x, w, dy [n, out]. Outputs: dx [n, in], dw [out, in], db [out].
pub fn linear_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    let (n, fin, fout) = dims(a)?;
    if a.input(2).shape != [n, fout] {
        return shape_err(
            a.op,
            format!("dy {:?}, expected {:?}", a.input(2).shape, [n, fout]),
        );
    }
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
