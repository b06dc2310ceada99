//! Sums along one dimension, their broadcasting inverse, and the total.
//! Shapes are split around the dimension into (outer, size, inner).

/// `scale * x.sum(dim)`, summed in order along `dim`.
pub fn sum_dim(x: &[f32], outer: usize, size: usize, inner: usize, scale: f32) -> Vec<f32> {
    let mut out = crate::buffers::zeros_f32(outer * inner);
    for o in 0..outer {
        let dst = &mut out[o * inner..(o + 1) * inner];
        for s in 0..size {
            let src = &x[(o * size + s) * inner..][..inner];
            dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v);
        }
        dst.iter_mut().for_each(|d| *d *= scale);
    }
    out
}

/// `scale * x` repeated `size` times along the inserted dimension.
pub fn expand_dim(x: &[f32], outer: usize, size: usize, inner: usize, scale: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(outer * size * inner);
    for o in 0..outer {
        let src = &x[o * inner..(o + 1) * inner];
        for _ in 0..size {
            out.extend(src.iter().map(|&v| v * scale));
        }
    }
    out
}

/// Sum of all elements, accumulated in f64.
pub fn sum_all(x: &[f32]) -> f32 {
    x.iter().map(|&v| v as f64).sum::<f64>() as f32
}
