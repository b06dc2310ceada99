//! The op table: every op Deno can run, by name.
//!
//! An op validates shapes, dtypes and parameters, then calls a device kernel.
//! Inputs are borrowed; ops listed with in-place inputs ([`InPlace`]) update
//! their first inputs in place (running statistics, optimizer state).

use crate::error::{param_err, Error, Result};
use crate::tensor::{DType, Device, Tensor};

mod certify;
mod concat;
mod conv;
mod decompose;
mod elementwise;
mod index;
mod linear;
mod macer;
mod norm;
mod optim;
mod pool;
mod random;
mod reduce;
mod softmax;
mod testing;

pub(crate) use norm::given_stats;

/// What an op receives.
pub struct Args<'a> {
    pub op: &'static str,
    /// Inputs updated in place (the first handles, see [`InPlace`]).
    pub muts: &'a mut [Tensor],
    /// The other inputs.
    pub ins: &'a [&'a Tensor],
    pub params: &'a [f64],
    /// The device the caller works on: where ops without tensor inputs
    /// (`full`, `randn`) put their outputs.
    pub device: Device,
}

impl Args<'_> {
    /// The device every tensor input lives on (the caller's device for ops
    /// without tensor inputs); an error names the first input elsewhere.
    pub fn device(&self) -> Result<Device> {
        let mut tensors = self.muts.iter().chain(self.ins.iter().copied());
        let Some(first) = tensors.next() else {
            return Ok(self.device);
        };
        let device = first.device();
        match tensors.position(|t| t.device() != device) {
            None => Ok(device),
            Some(i) => Err(Error::Devices {
                op: self.op,
                msg: format!(
                    "input 0 is on {}, input {} on {}",
                    device.name(),
                    i + 1,
                    self.muts
                        .iter()
                        .chain(self.ins.iter().copied())
                        .nth(i + 1)
                        .map_or("?", |t| t.device().name())
                ),
            }),
        }
    }

    /// Runs the kernel of the device the inputs live on.
    pub fn dispatch(&mut self, cpu: OpFn, gpu: OpFn) -> Result<Vec<Tensor>> {
        match self.device()? {
            Device::Cpu => cpu(self),
            Device::Gpu => gpu(self),
        }
    }

    pub fn input(&self, i: usize) -> &Tensor {
        self.ins[i]
    }

    pub fn f32(&self, i: usize) -> Result<&[f32]> {
        self.ins[i].f32s(self.op, i)
    }

    pub fn i32(&self, i: usize) -> Result<&[i32]> {
        self.ins[i].i32s(self.op, i)
    }

    /// Fails unless input `i` holds elements of type `want[i]` (inputs past
    /// `want` unchecked): device kernels read buffers as they are.
    pub fn dtypes(&self, want: &[DType]) -> Result<()> {
        (0..want.len().min(self.ins.len())).try_for_each(|i| self.dtype(i, want[i]))
    }

    /// Fails unless input `i` holds elements of type `want`.
    pub fn dtype(&self, i: usize, want: DType) -> Result<()> {
        let got = self.input(i).dtype();
        if got != want {
            return Err(Error::DType {
                op: self.op,
                input: i,
                expected: want.name(),
                got: got.name(),
            });
        }
        Ok(())
    }

    pub fn param(&self, i: usize, name: &str) -> Result<f64> {
        match self.params.get(i) {
            Some(v) if v.is_finite() => Ok(*v),
            Some(v) => param_err(self.op, format!("parameter {name} must be finite, got {v}")),
            None => param_err(self.op, format!("missing parameter {name} (position {i})")),
        }
    }

    /// A non-negative whole number parameter.
    pub fn usize(&self, i: usize, name: &str) -> Result<usize> {
        let v = self.param(i, name)?;
        if v < 0.0 || v.fract() != 0.0 || v > 1e12 {
            return param_err(
                self.op,
                format!("parameter {name} must be a whole number >= 0, got {v}"),
            );
        }
        Ok(v as usize)
    }

    /// A whole number parameter >= 1.
    pub fn positive(&self, i: usize, name: &str) -> Result<usize> {
        match self.usize(i, name)? {
            0 => param_err(self.op, format!("parameter {name} must be >= 1")),
            v => Ok(v),
        }
    }

    pub fn flag(&self, i: usize, name: &str) -> Result<bool> {
        Ok(self.param(i, name)? != 0.0)
    }

    /// Optional parameter with a default when absent.
    pub fn param_or(&self, i: usize, name: &str, default: f64) -> Result<f64> {
        if i < self.params.len() {
            self.param(i, name)
        } else {
            Ok(default)
        }
    }

    /// Fails unless input `i` has exactly `rank` dimensions.
    pub fn rank(&self, i: usize, rank: usize) -> Result<&[usize]> {
        let shape = &self.ins[i].shape;
        if shape.len() != rank {
            return Err(Error::Shape {
                op: self.op,
                msg: format!("input {i} must have {rank} dimensions, got shape {shape:?}"),
            });
        }
        Ok(shape)
    }

    /// Fails unless inputs `a` and `b` have the same shape.
    pub fn same_shape(&self, a: usize, b: usize) -> Result<()> {
        if self.ins[a].shape != self.ins[b].shape {
            return Err(Error::Shape {
                op: self.op,
                msg: format!(
                    "inputs {a} and {b} differ: {:?} vs {:?}",
                    self.ins[a].shape, self.ins[b].shape
                ),
            });
        }
        Ok(())
    }
}

pub type OpFn = fn(&mut Args) -> Result<Vec<Tensor>>;

/// One entry of the table.
pub struct OpDef {
    pub name: &'static str,
    /// Which leading inputs are updated in place.
    pub muts: InPlace,
    /// Inclusive bounds on the total number of inputs.
    pub min_in: usize,
    pub max_in: usize,
    pub run: OpFn,
}

/// How many leading inputs an op updates in place.
#[derive(Clone, Copy)]
pub enum InPlace {
    First(usize),
    /// Two of every three inputs: ops over a list of tensors given as
    /// `(a_1, b_1, ..., a_n, b_n, c_1, ..., c_n)`, updating each `a_i, b_i`.
    TwoThirds,
}

impl InPlace {
    /// The in-place count for `inputs` inputs.
    pub fn count(self, inputs: usize) -> usize {
        match self {
            InPlace::First(n) => n,
            InPlace::TwoThirds => inputs / 3 * 2,
        }
    }
}

const fn op(name: &'static str, min_in: usize, max_in: usize, run: OpFn) -> OpDef {
    OpDef {
        name,
        muts: InPlace::First(0),
        min_in,
        max_in,
        run,
    }
}

const fn op_mut(
    name: &'static str,
    n_mut: usize,
    min_in: usize,
    max_in: usize,
    run: OpFn,
) -> OpDef {
    OpDef {
        name,
        muts: InPlace::First(n_mut),
        min_in,
        max_in,
        run,
    }
}

/// Every op. Inputs are listed as (in-place..., others...).
pub static OPS: &[OpDef] = &[
    // elementwise
    op("add", 2, 2, elementwise::add),
    op("sub", 2, 2, elementwise::sub),
    op("mul", 2, 2, elementwise::mul),
    op("affine", 1, 1, elementwise::affine),
    op("relu", 1, 1, elementwise::relu),
    op("relu_backward", 2, 2, elementwise::relu_backward),
    op("add_relu", 2, 2, elementwise::add_relu),
    op("log", 1, 1, elementwise::log),
    op("log_backward", 2, 2, elementwise::log_backward),
    op("sqrt", 1, 1, elementwise::sqrt),
    op("recip", 1, 1, elementwise::recip),
    op("ndtri", 1, 1, elementwise::ndtri),
    op("ndtri_backward", 2, 2, elementwise::ndtri_backward),
    op("reshape", 1, 1, elementwise::reshape),
    op("full", 0, 0, elementwise::full),
    op_mut("copy_", 1, 2, 2, elementwise::copy_inplace),
    op("concat", 1, usize::MAX, concat::concat),
    // reductions
    op("sum_dim", 1, 1, reduce::sum_dim),
    op("expand_dim", 1, 1, reduce::expand_dim),
    op("sum_all", 1, 1, reduce::sum_all),
    // softmax family
    op("softmax", 1, 1, softmax::softmax),
    op("softmax_backward", 2, 2, softmax::softmax_backward),
    op("log_softmax", 1, 1, softmax::log_softmax),
    op("log_softmax_backward", 2, 2, softmax::log_softmax_backward),
    // indexing
    op("gather_rows", 2, 2, index::gather_rows),
    op("scatter_rows", 2, 2, index::scatter_rows),
    op("topk2", 1, 1, index::topk2),
    op("index_select", 2, 2, index::index_select),
    op("index_add", 2, 2, index::index_add),
    // layers
    op("linear", 2, 3, linear::linear),
    op("linear_backward", 3, 3, linear::linear_backward),
    op("conv2d", 2, 5, conv::conv2d),
    op("conv2d_backward", 3, 4, conv::conv2d_backward),
    op("conv2d_bn_eval", 6, 7, conv::conv2d_bn_eval),
    op(
        "bn_relu_conv2d_backward",
        9,
        9,
        conv::bn_relu_conv2d_backward,
    ),
    op(
        "residual_block_backward",
        15,
        19,
        conv::residual_block_backward,
    ),
    op("max_pool2d", 1, 1, pool::max_pool2d),
    op("max_pool2d_backward", 2, 2, pool::max_pool2d_backward),
    op("avg_pool2d", 1, 1, pool::avg_pool2d),
    op("avg_pool2d_backward", 1, 1, pool::avg_pool2d_backward),
    op_mut("batch_norm_train", 2, 5, 7, norm::batch_norm_train),
    op("batch_norm_eval", 5, 5, norm::batch_norm_eval),
    op("batch_norm_backward", 5, 5, norm::batch_norm_backward),
    op_mut(
        "batch_norm_relu_train",
        2,
        5,
        7,
        norm::batch_norm_relu_train,
    ),
    op("batch_norm_relu_eval", 5, 5, norm::batch_norm_relu_eval),
    op_mut(
        "batch_norm_train_affine",
        2,
        6,
        6,
        norm::batch_norm_train_affine,
    ),
    op_mut(
        "batch_norm_add_relu_train",
        2,
        6,
        8,
        norm::batch_norm_add_relu_train,
    ),
    op(
        "batch_norm_add_relu_backward",
        6,
        6,
        norm::batch_norm_add_relu_backward,
    ),
    op(
        "batch_norm_relu_backward",
        6,
        6,
        norm::batch_norm_relu_backward,
    ),
    // randomness
    op("randn", 0, 0, random::randn),
    op("tile_noise", 1, 1, random::tile_noise),
    // certification
    op("argmax_counts", 1, 1, certify::argmax_counts),
    op("softmax_stats", 1, 1, certify::softmax_stats),
    // training
    op("macer_keep", 3, 3, macer::macer_keep),
    // optimizer
    OpDef {
        name: "sgd_step",
        muts: InPlace::TwoThirds,
        min_in: 3,
        max_in: usize::MAX,
        run: optim::sgd_step,
    },
];

/// Ops for testing the library's boundary, found only when the environment
/// variable [`TEST_OPS_ENV`] is `1` when they are called.
pub static TEST_OPS: &[OpDef] = &[op_mut("debug_panic", 1, 1, 1, testing::debug_panic)];

/// Environment variable that makes [`TEST_OPS`] callable.
pub const TEST_OPS_ENV: &str = "MACER_COMPUTE_TEST_OPS";

fn test_ops_enabled() -> bool {
    std::env::var_os(TEST_OPS_ENV).is_some_and(|v| v == "1")
}

pub fn find(name: &str) -> Result<&'static OpDef> {
    OPS.iter()
        .find(|d| d.name == name)
        .or_else(|| {
            test_ops_enabled()
                .then(|| TEST_OPS.iter().find(|d| d.name == name))
                .flatten()
        })
        .ok_or_else(|| Error::UnknownOp(name.to_string()))
}
