//! A tensor: a shape and an owned, contiguous, row-major buffer.

use crate::error::{Error, Result};

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

/// Host storage of the CPU device. A GPU device adds its own variant.
#[derive(Debug, Clone)]
pub enum Data {
    F32(Vec<f32>),
    I32(Vec<i32>),
}

impl Drop for Data {
    /// Large buffers go back to [`crate::buffers`] for the next output.
    fn drop(&mut self) {
        match self {
            Data::F32(v) => crate::buffers::recycle_f32(std::mem::take(v)),
            Data::I32(v) => crate::buffers::recycle_i32(std::mem::take(v)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Data,
}

impl Tensor {
    pub fn from_f32(shape: Vec<usize>, data: Vec<f32>) -> Tensor {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor {
            shape,
            data: Data::F32(data),
        }
    }

    pub fn from_i32(shape: Vec<usize>, data: Vec<i32>) -> Tensor {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Tensor {
            shape,
            data: Data::I32(data),
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
        match self.data {
            Data::F32(_) => DType::F32,
            Data::I32(_) => DType::I32,
        }
    }

    pub fn nbytes(&self) -> usize {
        self.numel() * 4
    }

    /// The f32 elements, or a dtype error naming the op and input position.
    pub fn f32s(&self, op: &'static str, input: usize) -> Result<&[f32]> {
        match &self.data {
            Data::F32(v) => Ok(v),
            Data::I32(_) => Err(dtype_error(op, input, "f32", "i32")),
        }
    }

    pub fn f32s_mut(&mut self, op: &'static str, input: usize) -> Result<&mut [f32]> {
        match &mut self.data {
            Data::F32(v) => Ok(v),
            Data::I32(_) => Err(dtype_error(op, input, "f32", "i32")),
        }
    }

    pub fn i32s(&self, op: &'static str, input: usize) -> Result<&[i32]> {
        match &self.data {
            Data::I32(v) => Ok(v),
            Data::F32(_) => Err(dtype_error(op, input, "i32", "f32")),
        }
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
