//! Tensor kernels for the MACER Deno program.
//!
//! Tensors are owned by this library and named by opaque `u32` handles
//! ([`registry`]). Deno calls a small C ABI ([`ffi`]): upload, download, free,
//! and `cm_run`, which executes one coarse op from the table in [`ops`]. Each
//! op validates its inputs once and then calls a device kernel ([`cpu`]).
//! Nothing here assumes the caller can see a tensor's memory, so a GPU device
//! can implement the same op table.

pub mod align;
pub mod buffers;
pub mod cpu;
pub mod cpu_math;
pub mod error;
pub mod gpu;
pub mod ffi;
pub mod ops;
pub mod philox;
pub mod pool;
pub mod registry;
pub mod tensor;
