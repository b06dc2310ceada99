//! conv2d forward and backward on the GPU: implicit GEMMs (the tiled GEMM
//! reading the input through the convolution's geometry, no im2col buffer).

use super::gemm::{self, Dims, Gemm};
use super::{grid, GpuData, Kernel, WORKGROUP};
use crate::error::Result;
use crate::geometry::{ConvGeom, ConvInputs};
use crate::ops::Args;
use crate::tensor::{DType, Tensor};

const STATS: &str = include_str!("shaders/channel_stats.wgsl");

static FORWARD: Gemm = Gemm::new(
    [
        "conv.forward.16x256",
        "conv.forward.32x128",
        "conv.forward.64x64",
    ],
    concat!(
        include_str!("shaders/conv_common.wgsl"),
        include_str!("shaders/conv_forward.wgsl")
    ),
);
static DATA_GRAD: Gemm = Gemm::new(
    [
        "conv.data_grad.16x256",
        "conv.data_grad.32x128",
        "conv.data_grad.64x64",
    ],
    concat!(
        include_str!("shaders/conv_common.wgsl"),
        include_str!("shaders/conv_data_grad.wgsl")
    ),
);
static WEIGHT_GRAD: Gemm = Gemm::new(
    [
        "conv.weight_grad.16x256",
        "conv.weight_grad.32x128",
        "conv.weight_grad.64x64",
    ],
    concat!(
        include_str!("shaders/conv_common.wgsl"),
        include_str!("shaders/conv_weight_grad.wgsl")
    ),
);

/// Flag bits of `conv_common.wgsl`.
const HAS_BIAS: u32 = 1;
const HAS_PROLOGUE: u32 = 2;
const HAS_ACC: u32 = 4;

/// The convolution's parameter words after the GEMM's.
fn words(g: &ConvGeom, flags: u32) -> [u32; 11] {
    let geometry = [g.c, g.h, g.w, g.o, g.kh, g.kw, g.stride, g.pad, g.ho, g.wo];
    let [c, h, w, o, kh, kw, stride, pad, ho, wo] = geometry.map(|v| v as u32);
    [c, h, w, o, kh, kw, stride, pad, ho, wo, flags]
}

/// Input `i`'s buffer, if the op has one there.
fn optional<'a>(a: &'a Args, i: Option<usize>) -> Result<Option<&'a GpuData>> {
    i.map(|i| a.ins[i].gpu(a.op, i)).transpose()
}

/// Inputs: x, w, then as `io` says a bias and the prologue's scale and shift.
/// Outputs: y, and with `io.with_stats` each output channel's batch mean and
/// biased variance.
pub fn conv2d(a: &mut Args, g: &ConvGeom, io: ConvInputs) -> Result<Vec<Tensor>> {
    let (x, w) = (a.ins[0].gpu(a.op, 0)?, a.ins[1].gpu(a.op, 1)?);
    let bias = optional(a, io.bias)?;
    let scale = optional(a, io.prologue)?;
    let shift = optional(a, io.prologue.map(|i| i + 1))?;
    let gpu = x.gpu();
    let y = gpu.alloc(DType::F32, g.n * g.o * g.p());
    let flags = (HAS_BIAS * bias.is_some() as u32) | (HAS_PROLOGUE * scale.is_some() as u32);
    // w stands in for the absent optional inputs' bindings (never read).
    let buffers = [
        x,
        w,
        bias.unwrap_or(w),
        scale.unwrap_or(w),
        shift.unwrap_or(w),
        &y,
    ];
    let d = Dims::whole(g.o, g.n * g.p(), g.k());
    gemm::dispatch(gpu, &FORWARD, &buffers, d, &words(g, flags));
    let stats = io.with_stats.then(|| {
        let (mean, var) = (gpu.alloc(DType::F32, g.o), gpu.alloc(DType::F32, g.o));
        channel_stats(&y, (&mean, &var), g);
        [mean, var]
    });
    let mut out = vec![Tensor::from_gpu(vec![g.n, g.o, g.ho, g.wo], y)];
    out.extend(
        stats
            .into_iter()
            .flatten()
            .map(|s| Tensor::from_gpu(vec![g.o], s)),
    );
    Ok(out)
}

/// Each output channel's batch mean and biased variance of `y`.
fn channel_stats(y: &GpuData, (mean, var): (&GpuData, &GpuData), g: &ConvGeom) {
    if g.o == 0 {
        return;
    }
    let kernel = Kernel {
        name: "conv.channel_stats",
        source: STATS,
        entry: "main",
    };
    let words = [g.n, g.o, g.p()].map(|v| v as u32);
    y.gpu().dispatch(
        &kernel,
        &[y, mean, var],
        &words,
        grid(g.o * WORKGROUP as usize),
    );
}

/// Inputs: x, w, dy, optional dx_acc (added to dx). Outputs: [dx if
/// need_dx], dw, [db if with_bias].
pub fn conv2d_backward(
    a: &mut Args,
    g: &ConvGeom,
    with_bias: bool,
    need_dx: bool,
) -> Result<Vec<Tensor>> {
    let (x, w, dy) = (
        a.ins[0].gpu(a.op, 0)?,
        a.ins[1].gpu(a.op, 1)?,
        a.ins[2].gpu(a.op, 2)?,
    );
    let acc = optional(a, (a.ins.len() == 4).then_some(3))?;
    let gpu = x.gpu();
    let mut out = vec![];
    if need_dx {
        let dx = gpu.alloc(DType::F32, g.n * g.in_size());
        let d = Dims::whole(g.c, g.n * g.h * g.w, g.o * g.kh * g.kw);
        let flags = HAS_ACC * acc.is_some() as u32;
        let buffers = [w, dy, acc.unwrap_or(w), &dx];
        gemm::dispatch(gpu, &DATA_GRAD, &buffers, d, &words(g, flags));
        out.push(Tensor::from_gpu(a.ins[0].shape.clone(), dx));
    }
    out.push(Tensor::from_gpu(
        a.ins[1].shape.clone(),
        weight_grad(g, x, dy),
    ));
    if with_bias {
        let db = gpu.alloc(DType::F32, g.o);
        gemm::channel_sum(gpu, dy, &db, (g.n, g.o, g.p()));
        out.push(Tensor::from_gpu(vec![g.o], db));
    }
    Ok(out)
}

/// dw [O, C * kh * kw], summed over the batch in K splits, then across them.
fn weight_grad(g: &ConvGeom, x: &GpuData, dy: &GpuData) -> GpuData {
    let gpu = x.gpu();
    let d = Dims::split(g.o, g.k(), g.n * g.p());
    let len = g.o * g.k();
    let dw = gpu.alloc(DType::F32, len);
    if d.partials() == 1 {
        gemm::dispatch(gpu, &WEIGHT_GRAD, &[x, dy, &dw], d, &words(g, 0));
        return dw;
    }
    let parts = gpu.alloc(DType::F32, d.partials() * len);
    gemm::dispatch(gpu, &WEIGHT_GRAD, &[x, dy, &parts], d, &words(g, 0));
    gemm::sum_splits(gpu, &parts, &dw, d.partials(), len);
    dw
}

#[cfg(test)]
mod tests {
    use super::Dims;
    use crate::gpu::testing::{max_rel_diff, pair, run_both, values};
    use crate::tensor::Tensor;

    /// The GPU sums each output directly in K order, the CPU in blocked
    /// GEMMs (differences up to 1e-5 relative on these shapes) or through
    /// Winograd F(4x4, 3x3), whose transforms round more (up to 4e-5).
    fn tolerance([n, c, o, h, w, k, s, p]: [usize; 8]) -> f32 {
        let g = crate::cpu::testing::geom(n, c, o, h, w, k, s, p);
        if crate::cpu::winograd::applies(&g) {
            1e-4
        } else {
            2e-5
        }
    }

    fn tensor(shape: &[usize], seed: u32) -> (u32, u32) {
        pair(Tensor::from_f32(
            shape.to_vec(),
            values(shape.iter().product(), seed),
        ))
    }

    /// Positive values (a prologue's scale, so that the ReLU keeps some inputs).
    fn positive(shape: &[usize], seed: u32) -> (u32, u32) {
        let v = values(shape.iter().product(), seed)
            .iter()
            .map(|v| 1.5 + v)
            .collect();
        pair(Tensor::from_f32(shape.to_vec(), v))
    }

    fn check(op: &str, cpu: &[u32], gpu: &[u32], params: &[f64], tol: f32) {
        for (i, (shape, c, g)) in run_both(op, cpu, gpu, params).iter().enumerate() {
            let d = max_rel_diff(c, g);
            assert!(d <= tol, "{op} {params:?} output {i} {shape:?}: {d}");
        }
    }

    /// (n, c, o, h, w, k, stride, pad): LeNet's two convolutions, ResNet's 3x3
    /// (stride 1 on Winograd's path, stride 2 on odd sizes), a 1x1 shortcut,
    /// more than one 64-wide tile of output channels, a non-square input.
    const SHAPES: [[usize; 8]; 7] = [
        [3, 1, 6, 28, 28, 5, 1, 0],
        [2, 6, 16, 14, 14, 5, 1, 0],
        [2, 16, 16, 8, 8, 3, 1, 1],
        [2, 16, 32, 9, 9, 3, 2, 1],
        [2, 16, 32, 8, 8, 1, 2, 0],
        [2, 3, 70, 7, 5, 3, 2, 0],
        [4, 3, 8, 16, 16, 3, 1, 1],
    ];

    #[test]
    fn conv2d_matches_cpu() {
        for shape @ [n, c, o, h, w, k, s, p] in SHAPES {
            let tol = tolerance(shape);
            let (x, xg) = tensor(&[n, c, h, w], 1);
            let (wt, wg) = tensor(&[o, c, k, k], 2);
            let (b, bg) = tensor(&[o], 3);
            let (scale, scale_g) = positive(&[c], 4);
            let (shift, shift_g) = tensor(&[c], 5);
            let (s, p) = (s as f64, p as f64);
            check("conv2d", &[x, wt], &[xg, wg], &[s, p], tol);
            check("conv2d", &[x, wt, b], &[xg, wg, bg], &[s, p], tol);
            check("conv2d", &[x, wt], &[xg, wg], &[s, p, 1.0], tol);
            check("conv2d", &[x, wt, b], &[xg, wg, bg], &[s, p, 1.0], tol);
            let (cpu, gpu) = ([x, wt, b, scale, shift], [xg, wg, bg, scale_g, shift_g]);
            check("conv2d", &cpu, &gpu, &[s, p, 1.0, 1.0], tol);
            let (cpu, gpu) = ([x, wt, scale, shift], [xg, wg, scale_g, shift_g]);
            check("conv2d", &cpu, &gpu, &[s, p, 1.0, 1.0], tol);
        }
    }

    #[test]
    fn conv2d_backward_matches_cpu() {
        for shape @ [n, c, o, h, w, k, s, p] in SHAPES {
            let tol = tolerance(shape);
            let (ho, wo) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
            let (x, xg) = tensor(&[n, c, h, w], 1);
            let (wt, wg) = tensor(&[o, c, k, k], 2);
            let (dy, dyg) = tensor(&[n, o, ho, wo], 3);
            let (acc, acc_g) = tensor(&[n, c, h, w], 4);
            let (s, p) = (s as f64, p as f64);
            for (bias, dx) in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)] {
                check(
                    "conv2d_backward",
                    &[x, wt, dy],
                    &[xg, wg, dyg],
                    &[s, p, bias, dx],
                    tol,
                );
            }
            let (cpu, gpu) = ([x, wt, dy, acc], [xg, wg, dyg, acc_g]);
            check("conv2d_backward", &cpu, &gpu, &[s, p, 1.0, 1.0], tol);
        }
    }

    #[test]
    fn long_weight_gradients_are_split() {
        // The last of SHAPES: K = 4 images x 256 pixels, two splits.
        assert_eq!(Dims::split(8, 27, 4 * 256).partials(), 2);
        assert_eq!(Dims::split(8, 27, 511).partials(), 1);
    }
}
