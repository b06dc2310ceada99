//! A tensor: a shape and an owned, contiguous, row-major buffer on one device.

use crate::error::{Error, Result};
use crate::gpu::GpuData;

/// Element types that cross the boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum DType {
    F32 = 0,
    I32 = 1,
}

impl DType {
    pub fn from_code(code: u32) -> Option<DType> {
        match code {
            0 => Some(DType::F32),
            1 => Some(DType::I32),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I32 => "i32",
        }
    }
}

/// Where a tensor's elements live. The process has at most one GPU context
/// ([`crate::gpu::context`]), so a kind is enough to name a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Device {
    Cpu = 0,
    Gpu = 1,
}

impl Device {
    pub fn from_code(code: u32) -> Option<Device> {
        match code {
            0 => Some(Device::Cpu),
            1 => Some(Device::Gpu),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Gpu => "gpu",
        }
    }
}

/// Host memory: the CPU device's storage.
#[derive(Debug, Clone)]
pub enum CpuData {
    F32(Vec<f32>),
    I32(Vec<i32>),
}

impl Drop for CpuData {
    /// Large buffers go back to [`crate::buffers`] for the next output.
    fn drop(&mut self) {
        match self {
            CpuData::F32(v) => crate::buffers::recycle_f32(std::mem::take(v)),
            CpuData::I32(v) => crate::buffers::recycle_i32(std::mem::take(v)),
        }
    }
}

/// A tensor's elements, on the device that holds them.
#[derive(Debug)]
pub enum Storage {
    Cpu(CpuData),
    Gpu(GpuData),
}

#[derive(Debug)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub storage: Storage,
}

impl Tensor {
    pub fn from_f32(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor {
            shape,
            storage: Storage::Cpu(CpuData::F32(data)),
        }
    }

    pub fn from_i32(shape: Vec<usize>, data: Vec<i32>) -> Tensor {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor {
            shape,
            storage: Storage::Cpu(CpuData::I32(data)),
        }
    }

    pub fn from_gpu(shape: Vec<usize>, data: GpuData) -> Tensor {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor {
            shape,
            storage: Storage::Gpu(data),
        }
    }

    pub fn zeros(shape: Vec<usize>) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_f32(shape, crate::buffers::zeros_f32(n))
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn dtype(&self) -> DType {
        match &self.storage {
            Storage::Cpu(CpuData::F32(_)) => DType::F32,
            Storage::Cpu(CpuData::I32(_)) => DType::I32,
            Storage::Gpu(g) => g.dtype(),
        }
    }

    pub fn device(&self) -> Device {
        match self.storage {
            Storage::Cpu(_) => Device::Cpu,
            Storage::Gpu(_) => Device::Gpu,
        }
    }

    pub fn nbytes(&self) -> usize {
        self.numel() * 4
    }

    /// The GPU buffer, or an error naming the op and input position.
    pub fn gpu(&self, op: &'static str, input: usize) -> Result<&GpuData> {
        match &self.storage {
            Storage::Gpu(g) => Ok(g),
            Storage::Cpu(_) => Err(device_error(op, input, Device::Gpu, Device::Cpu)),
        }
    }

    /// The f32 elements, or a dtype error naming the op and input position.
    pub fn f32s(&self, op: &'static str, input: usize) -> Result<&[f32]> {
        match &self.storage {
            Storage::Cpu(CpuData::F32(v)) => Ok(v),
            Storage::Cpu(CpuData::I32(_)) => Err(dtype_error(op, input, "f32", "i32")),
            Storage::Gpu(_) => Err(device_error(op, input, Device::Cpu, Device::Gpu)),
        }
    }

    pub fn f32s_mut(&mut self, op: &'static str, input: usize) -> Result<&mut [f32]> {
        match &mut self.storage {
            Storage::Cpu(CpuData::F32(v)) => Ok(v),
            Storage::Cpu(CpuData::I32(_)) => Err(dtype_error(op, input, "f32", "i32")),
            Storage::Gpu(_) => Err(device_error(op, input, Device::Cpu, Device::Gpu)),
        }
    }

    pub fn i32s(&self, op: &'static str, input: usize) -> Result<&[i32]> {
        match &self.storage {
            Storage::Cpu(CpuData::I32(v)) => Ok(v),
            Storage::Cpu(CpuData::F32(_)) => Err(dtype_error(op, input, "i32", "f32")),
            Storage::Gpu(_) => Err(device_error(op, input, Device::Cpu, Device::Gpu)),
        }
    }

    /// A copy on the same device.
    pub fn duplicate(&self) -> Tensor {
        Tensor {
            shape: self.shape.clone(),
            storage: match &self.storage {
                Storage::Cpu(d) => Storage::Cpu(d.clone()),
                Storage::Gpu(g) => Storage::Gpu(g.duplicate()),
            },
        }
    }

    /// The elements as little-endian bytes, copied to the host.
    pub fn to_host_bytes(&self) -> Result<Vec<u8>> {
        Ok(match &self.storage {
            Storage::Cpu(CpuData::F32(v)) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Storage::Cpu(CpuData::I32(v)) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Storage::Gpu(g) => g.read_bytes()?,
        })
    }
}

fn dtype_error(op: &'static str, input: usize, expected: &'static str, got: &'static str) -> Error {
    Error::DType {
        op,
        input,
        expected,
        got,
    }
}

fn device_error(op: &'static str, input: usize, expected: Device, got: Device) -> Error {
    Error::Devices {
        op,
        msg: format!(
            "input {input} is on {}, this kernel needs {}",
            got.name(),
            expected.name()
        ),
    }
}
