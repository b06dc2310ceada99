//! Tensor kernels for the MACER Deno program.
//!
//! Tensors are owned by this library and named by opaque `u32` handles
//! ([`registry`]). Deno calls a small C ABI ([`ffi`]): upload, download, free,
//! and `cm_run`, which executes one coarse op from the table in [`ops`]. Each
//! op validates its inputs once and then calls the kernel of the device its
//! inputs live on ([`cpu`] or [`gpu`]); fused ops without a device kernel run
//! as primitive ops (`ops::decompose`). The caller never sees a tensor's
//! memory, only its dtype, device and shape.

pub mod align;
pub mod buffers;
pub mod cpu;
pub mod cpu_math;
pub mod error;
pub mod ffi;
pub mod geometry;
pub mod gpu;
pub mod ops;
pub mod philox;
pub mod pool;
pub mod registry;
pub mod tensor;
