//! Per-class statistics of a batch of logits, so certification never moves
//! a batch of samples to the host.

use super::Args;
use crate::error::Result;
use crate::tensor::Tensor;

/// How many rows of logits [m, C] pick each class (first maximum on ties).
pub fn argmax_counts(a: &mut Args) -> Result<Vec<Tensor>> {
    let s = a.rank(0, 2)?.to_vec();
    let mut counts = vec![0f32; s[1]];
    for row in a.f32(0)?.chunks(s[1].max(1)) {
        let mut best = 0;
        for c in 1..row.len() {
            if row[c] > row[best] {
                best = c;
            }
        }
        if !row.is_empty() {
            counts[best] += 1.0;
        }
    }
    Ok(vec![Tensor::from_f32(vec![s[1]], counts)])
}

/// Sums and sums of squares of softmax(beta * z) over the rows of z [m, C].
/// Params: beta. Output [2, C]: row 0 sums, row 1 sums of squares.
pub fn softmax_stats(a: &mut Args) -> Result<Vec<Tensor>> {
    let s = a.rank(0, 2)?.to_vec();
    let beta = a.param(0, "beta")? as f32;
    let c = s[1];
    let (mut sum, mut sq) = (vec![0f64; c], vec![0f64; c]);
    let mut p = vec![0f32; c];
    for row in a.f32(0)?.chunks(c.max(1)) {
        let m = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(beta * v));
        let mut total = 0f32;
        for (p, &v) in p.iter_mut().zip(row) {
            *p = (beta * v - m).exp();
            total += *p;
        }
        for j in 0..c {
            let q = (p[j] / total) as f64;
            sum[j] += q;
            sq[j] += q * q;
        }
    }
    let out = sum.iter().chain(&sq).map(|&v| v as f32).collect();
    Ok(vec![Tensor::from_f32(vec![2, c], out)])
}
