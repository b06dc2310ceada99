//! Ops that exist to test the library's boundary, not to compute anything.
//! They are in [`super::TEST_OPS`], callable only when `MACER_COMPUTE_TEST_OPS=1`.

use rayon::prelude::*;

use super::Args;
use crate::error::Result;
use crate::tensor::Tensor;

/// `debug_panic(t)`, updating `t` in place: writes 1 into `t`'s first element,
/// then panics (a bug that the boundary must turn into an error). Parameter 0
/// says where: 0 on the thread running the op, 1 inside a parallel loop on the
/// pool's worker threads.
pub fn debug_panic(a: &mut Args) -> Result<Vec<Tensor>> {
    let where_ = a.usize(0, "where")?;
    let op = a.op;
    if let Some(first) = a.muts[0].f32s_mut(op, 0)?.first_mut() {
        *first = 1.0;
    }
    if where_ == 0 {
        panic!("debug_panic: deliberate panic on the op's thread");
    }
    (0..64usize).into_par_iter().for_each(|i| {
        if i % 8 == 7 {
            panic!("debug_panic: deliberate panic in a parallel loop (item {i})");
        }
    });
    Ok(Vec::new())
}
