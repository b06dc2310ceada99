//! Concatenation along the first dimension: buffer-to-buffer copies, no kernel.

use crate::error::Result;
use crate::tensor::Tensor;

/// The inputs' buffers copied one after another into a new one (the caller
/// checked dtypes and shapes).
pub fn concat(ins: &[&Tensor], shape: Vec<usize>) -> Result<Tensor> {
    let first = ins[0].gpu("concat", 0)?;
    let gpu = first.gpu();
    let out = gpu.alloc(first.dtype(), shape.iter().product());
    let mut offset = 0;
    for (i, t) in ins.iter().enumerate() {
        let src = t.gpu("concat", i)?;
        let bytes = src.len() * 4;
        gpu.copy_region(src, 0, &out, offset, bytes);
        offset += bytes;
    }
    Ok(Tensor::from_gpu(shape, out))
}

#[cfg(test)]
mod tests {
    use crate::ffi::run_op;
    use crate::gpu::testing::{pair, run_both, values};
    use crate::tensor::{Device, Tensor};

    #[test]
    fn concat_matches_cpu_exactly_for_both_dtypes() {
        let (a, ag) = pair(Tensor::from_f32(vec![2, 3], values(6, 1)));
        let (b, bg) = pair(Tensor::from_f32(vec![0, 3], vec![]));
        let (c, cg) = pair(Tensor::from_f32(vec![5, 3], values(15, 2)));
        let out = run_both("concat", &[a, b, c], &[ag, bg, cg], &[]);
        assert_eq!(out[0].0, vec![7, 3]);
        assert_eq!(out[0].1, out[0].2);
        assert_eq!(&out[0].1[..6], &values(6, 1)[..]);
        let (i, ig) = pair(Tensor::from_i32(vec![2], vec![7, -1]));
        let (j, jg) = pair(Tensor::from_i32(vec![1], vec![3]));
        let out = run_both("concat", &[i, j], &[ig, jg], &[]);
        assert_eq!(out[0].2, vec![7.0, -1.0, 3.0]);
    }

    #[test]
    fn concat_names_the_input_that_does_not_fit() {
        let (a, _) = pair(Tensor::from_f32(vec![2, 3], values(6, 1)));
        let (b, _) = pair(Tensor::from_f32(vec![2, 4], values(8, 1)));
        let err = run_op("concat", &[a, b], &[], Device::Cpu).unwrap_err();
        assert!(
            err.to_string().contains("input 1 has shape [2, 4]"),
            "{err}"
        );
        let (i, _) = pair(Tensor::from_i32(vec![1, 3], vec![1, 2, 3]));
        let err = run_op("concat", &[a, i], &[], Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("i32"), "{err}");
    }
}
