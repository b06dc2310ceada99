//! The GPU device: WGSL compute kernels through wgpu, on one adapter.
//!
//! One context per process ([`context`]), created on first use. Work is
//! recorded into one command encoder and submitted when a value must come
//! back to the host ([`GpuData::read_bytes`]) or after [`MAX_PASSES`] passes,
//! so a training step is a few submissions, not one per op. Kernel
//! parameters go into one arena per submission. Freed buffers return to a
//! size-class pool only once the work recorded before their release was
//! submitted, so a reused buffer is never written while recorded work still
//! reads it.

mod context;
mod pool;

pub mod certify;
pub mod concat;
pub mod conv;
pub mod elementwise;
pub mod gemm;
pub mod index;
pub mod linear;
pub mod macer;
pub mod norm;
pub mod optim;
pub mod pool2d;
pub mod random;
pub mod reduce;
pub mod softmax;
#[cfg(test)]
pub(crate) mod testing;

pub use context::{adapters, context, try_context, AdapterSummary, Gpu, Kernel};
pub use pool::{allocated_bytes, GpuData};

use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};

/// Passes recorded before the encoder is submitted without being asked.
pub const MAX_PASSES: usize = 128;

/// Threads per workgroup of the one-dimensional kernels (`@workgroup_size(256)`).
pub const WORKGROUP: u32 = 256;

/// Workgroups for `n` threads of a one-dimensional kernel: a 2-D grid when
/// `n` needs more than 65,535 groups along x. A kernel finds its index as
/// `gid.x + gid.y * nwg.x * 256` and returns past `n`.
pub fn grid(n: usize) -> [u32; 3] {
    let groups = n.div_ceil(WORKGROUP as usize).max(1) as u32;
    if groups <= 65_535 {
        [groups, 1, 1]
    } else {
        [65_535, groups.div_ceil(65_535), 1]
    }
}

/// The buffer of an f32 input, or an error naming the op and input position
/// (device or dtype).
pub fn f32_data<'a>(t: &'a Tensor, op: &'static str, input: usize) -> Result<&'a GpuData> {
    let data = t.gpu(op, input)?;
    match data.dtype() {
        DType::F32 => Ok(data),
        got => Err(Error::DType {
            op,
            input,
            expected: "f32",
            got: got.name(),
        }),
    }
}

/// A kernel parameter word: f32 values go in as their bits.
pub fn f(v: f32) -> u32 {
    v.to_bits()
}
