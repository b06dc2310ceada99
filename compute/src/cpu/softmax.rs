//! Softmax and log-softmax along one dimension, with an input scale, on
//! lanes (the elements along the dimension) of a shape split into
//! (outer, size, inner).

#[derive(Clone, Copy)]
pub struct Lanes {
    pub outer: usize,
    pub size: usize,
    pub inner: usize,
}

/// Applies `f` to each lane, gathered contiguous.
fn per_lane(l: Lanes, inputs: &[&[f32]], mut f: impl FnMut(&[Vec<f32>], &mut [f32])) -> Vec<f32> {
    let mut out = crate::buffers::uninit_f32(l.outer * l.size * l.inner);
    let mut bufs: Vec<Vec<f32>> = inputs.iter().map(|_| vec![0f32; l.size]).collect();
    let mut res = vec![0f32; l.size];
    for o in 0..l.outer {
        for i in 0..l.inner {
            let at = |s: usize| (o * l.size + s) * l.inner + i;
            for (b, x) in bufs.iter_mut().zip(inputs) {
                b.iter_mut().enumerate().for_each(|(s, v)| *v = x[at(s)]);
            }
            f(&bufs, &mut res);
            res.iter().enumerate().for_each(|(s, &v)| out[at(s)] = v);
        }
    }
    out
}

/// `max(scale * x)`, the shift that keeps `exp` finite.
fn scaled_max(x: &[f32], scale: f32) -> f32 {
    x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v * scale))
}

pub fn softmax(l: Lanes, x: &[f32], scale: f32) -> Vec<f32> {
    per_lane(l, &[x], |x, y| {
        let m = scaled_max(&x[0], scale);
        let mut s = 0f32;
        for (y, &v) in y.iter_mut().zip(&x[0]) {
            *y = (v * scale - m).exp();
            s += *y;
        }
        y.iter_mut().for_each(|y| *y /= s);
    })
}

/// `y = softmax(scale x)`, `dy`: the gradient with respect to x.
pub fn softmax_backward(l: Lanes, y: &[f32], dy: &[f32], scale: f32) -> Vec<f32> {
    per_lane(l, &[y, dy], |v, dx| {
        let (y, dy) = (&v[0], &v[1]);
        let dot: f32 = y.iter().zip(dy).map(|(a, b)| a * b).sum();
        for ((o, &y), &d) in dx.iter_mut().zip(y).zip(dy) {
            *o = scale * y * (d - dot);
        }
    })
}

pub fn log_softmax(l: Lanes, x: &[f32], scale: f32) -> Vec<f32> {
    per_lane(l, &[x], |x, y| {
        let m = scaled_max(&x[0], scale);
        let lse = m + x[0]
            .iter()
            .map(|&v| (v * scale - m).exp())
            .sum::<f32>()
            .ln();
        y.iter_mut()
            .zip(&x[0])
            .for_each(|(y, &v)| *y = v * scale - lse);
    })
}

/// `y = log_softmax(scale x)`, `dy`: the gradient with respect to x.
pub fn log_softmax_backward(l: Lanes, y: &[f32], dy: &[f32], scale: f32) -> Vec<f32> {
    per_lane(l, &[y, dy], |v, dx| {
        let (y, dy) = (&v[0], &v[1]);
        let total: f32 = dy.iter().sum();
        for ((o, &y), &d) in dx.iter_mut().zip(y).zip(dy) {
            *o = scale * (d - y.exp() * total);
        }
    })
}
