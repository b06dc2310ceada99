//! Device buffers by size class, and the tensor storage that owns one.

use std::collections::HashMap;
use std::sync::Arc;

use super::context::Gpu;
use crate::error::Result;
use crate::tensor::DType;

/// Released buffers by size class (powers of two from 256 bytes), and the
/// counters the memory tests read.
#[derive(Default)]
pub struct BufferPool {
    free: HashMap<u64, Vec<wgpu::Buffer>>,
    /// Bytes in buffers that exist, pooled or in use.
    pub allocated: u64,
}

impl BufferPool {
    pub fn put(&mut self, size: u64, buffer: wgpu::Buffer) {
        self.free.entry(size).or_default().push(buffer);
    }

    fn take(&mut self, size: u64) -> Option<wgpu::Buffer> {
        self.free.get_mut(&size).and_then(|v| v.pop())
    }
}

/// The size class of `bytes`.
fn size_class(bytes: usize) -> u64 {
    (bytes.max(256) as u64).next_power_of_two()
}

/// A tensor's elements in device memory. The buffer goes back to the pool
/// when the tensor is dropped.
pub struct GpuData {
    gpu: Arc<Gpu>,
    buffer: Option<wgpu::Buffer>,
    size: u64,
    dtype: DType,
    len: usize,
}

impl std::fmt::Debug for GpuData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GpuData({} x {})", self.len, self.dtype.name())
    }
}

impl GpuData {
    pub(super) fn new(gpu: &Arc<Gpu>, dtype: DType, len: usize) -> GpuData {
        let size = size_class(len * 4);
        let pooled = gpu
            .pool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(size);
        let buffer = pooled.unwrap_or_else(|| {
            gpu.pool.lock().unwrap_or_else(|p| p.into_inner()).allocated += size;
            gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: None,
                size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        GpuData {
            gpu: gpu.clone(),
            buffer: Some(buffer),
            size,
            dtype,
            len,
        }
    }

    pub fn buffer(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("live buffer")
    }

    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The same elements seen as another element count (a reshape shares
    /// nothing: it copies, as on the CPU).
    pub fn read_bytes(&self) -> Result<Vec<u8>> {
        self.gpu.read(self.buffer(), self.len * 4)
    }

    /// A copy in a new buffer.
    pub fn duplicate(&self) -> GpuData {
        let out = self.gpu.alloc(self.dtype, self.len);
        self.gpu.copy(self, &out, self.len * 4);
        out
    }
}

impl Drop for GpuData {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            self.gpu.release(self.size, buffer);
        }
    }
}

/// Bytes of device memory the context has allocated (pooled or in use).
pub fn allocated_bytes() -> u64 {
    super::try_context().map_or(0, |g| {
        g.pool.lock().unwrap_or_else(|p| p.into_inner()).allocated
    })
}
