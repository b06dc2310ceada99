//! Per-class statistics of a batch of logits on the host.

/// How many rows of `z` [m, cols] pick each class (first maximum on ties).
pub fn argmax_counts(z: &[f32], cols: usize) -> Vec<f32> {
    let mut counts = vec![0f32; cols];
    for row in z.chunks(cols.max(1)) {
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
    counts
}

/// Sums, then sums of squares, of softmax(beta * z) over the rows of z
/// [m, cols], accumulated in f64.
pub fn softmax_stats(z: &[f32], cols: usize, beta: f32) -> Vec<f32> {
    let (mut sum, mut sq) = (vec![0f64; cols], vec![0f64; cols]);
    let mut p = vec![0f32; cols];
    for row in z.chunks(cols.max(1)) {
        let m = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(beta * v));
        let mut total = 0f32;
        for (p, &v) in p.iter_mut().zip(row) {
            *p = (beta * v - m).exp();
            total += *p;
        }
        for j in 0..cols {
            let q = (p[j] / total) as f64;
            sum[j] += q;
            sq[j] += q * q;
        }
    }
    sum.iter().chain(&sq).map(|&v| v as f32).collect()
}
