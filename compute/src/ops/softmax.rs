//! Softmax and log-softmax along one dimension, with an input scale
//! (`softmax(scale * x)`, MACER's inverse temperature beta).

use super::Args;
use crate::error::{param_err, Result};
use crate::tensor::Tensor;

struct Lanes {
    outer: usize,
    size: usize,
    inner: usize,
}

fn lanes(a: &Args) -> Result<Lanes> {
    let shape = &a.input(0).shape;
    let dim = a.usize(0, "dim")?;
    if dim >= shape.len() {
        return param_err(a.op, format!("dim {dim} out of range for shape {shape:?}"));
    }
    Ok(Lanes {
        outer: shape[..dim].iter().product(),
        size: shape[dim],
        inner: shape[dim + 1..].iter().product(),
    })
}

/// Applies `f` to each lane (the elements along `dim`), gathered contiguous.
fn per_lane(l: &Lanes, inputs: &[&[f32]], mut f: impl FnMut(&[Vec<f32>], &mut [f32])) -> Vec<f32> {
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

/// Runs `f(lane inputs, lane output, scale)` over every lane of input 0's shape;
/// all inputs share that shape. Params: dim, scale (default 1).
fn map_lanes(a: &Args, mut f: impl FnMut(&[Vec<f32>], &mut [f32], f32)) -> Result<Vec<Tensor>> {
    for i in 1..a.ins.len() {
        a.same_shape(0, i)?;
    }
    let l = lanes(a)?;
    let scale = a.param_or(1, "scale", 1.0)? as f32;
    let inputs = (0..a.ins.len())
        .map(|i| a.f32(i))
        .collect::<Result<Vec<_>>>()?;
    let out = per_lane(&l, &inputs, |v, o| f(v, o, scale));
    Ok(vec![Tensor::from_f32(a.input(0).shape.clone(), out)])
}

/// `max(scale * x)`, the shift that keeps `exp` finite.
fn scaled_max(x: &[f32], scale: f32) -> f32 {
    x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v * scale))
}

/// Params: dim, scale (default 1).
pub fn softmax(a: &mut Args) -> Result<Vec<Tensor>> {
    map_lanes(a, |x, y, scale| {
        let m = scaled_max(&x[0], scale);
        let mut s = 0f32;
        for (y, &v) in y.iter_mut().zip(&x[0]) {
            *y = (v * scale - m).exp();
            s += *y;
        }
        y.iter_mut().for_each(|y| *y /= s);
    })
}

/// Inputs: y = softmax(scale x), dy. Params: dim, scale.
pub fn softmax_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    map_lanes(a, |v, dx, scale| {
        let (y, dy) = (&v[0], &v[1]);
        let dot: f32 = y.iter().zip(dy).map(|(a, b)| a * b).sum();
        for ((o, &y), &d) in dx.iter_mut().zip(y).zip(dy) {
            *o = scale * y * (d - dot);
        }
    })
}

/// Params: dim, scale (default 1).
pub fn log_softmax(a: &mut Args) -> Result<Vec<Tensor>> {
    map_lanes(a, |x, y, scale| {
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

/// Inputs: y = log_softmax(scale x), dy. Params: dim, scale.
pub fn log_softmax_backward(a: &mut Args) -> Result<Vec<Tensor>> {
    map_lanes(a, |v, dx, scale| {
        let (y, dy) = (&v[0], &v[1]);
        let total: f32 = dy.iter().sum();
        for ((o, &y), &d) in dx.iter_mut().zip(y).zip(dy) {
            *o = scale * (d - y.exp() * total);
        }
    })
}
