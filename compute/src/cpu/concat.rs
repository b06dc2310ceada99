//! Concatenation along the first dimension, on host vectors.

use crate::tensor::{CpuData, Storage, Tensor};

/// The inputs' elements one after another (the caller checked dtypes, shapes
/// and that every input is on the cpu).
pub fn concat(ins: &[&Tensor], shape: Vec<usize>) -> Tensor {
    match host(ins[0]) {
        CpuData::F32(_) => Tensor::from_f32(
            shape,
            ins.iter()
                .flat_map(|t| match host(t) {
                    CpuData::F32(v) => v.iter().copied(),
                    CpuData::I32(_) => unreachable!("concat: dtypes checked"),
                })
                .collect(),
        ),
        CpuData::I32(_) => Tensor::from_i32(
            shape,
            ins.iter()
                .flat_map(|t| match host(t) {
                    CpuData::I32(v) => v.iter().copied(),
                    CpuData::F32(_) => unreachable!("concat: dtypes checked"),
                })
                .collect(),
        ),
    }
}

fn host(t: &Tensor) -> &CpuData {
    match &t.storage {
        Storage::Cpu(d) => d,
        Storage::Gpu(_) => unreachable!("concat: inputs checked to be on the cpu"),
    }
}
