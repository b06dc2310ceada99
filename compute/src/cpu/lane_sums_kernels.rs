// The batch-norm statistics sums of `super::simd` on the 16-lane vector `V`
// (`F32x16`): `include!`d by `lane_sums::avx512` and `lane_sums::avx2`
// (`vec16::kernels_at_each_level!`).
//
// Each keeps the portable versions' order exactly: lane `l` of a block adds
// elements `l, l + 16, ...` one at a time (a product, then a sum, never
// fused), lanes past a slice's end are left alone, and each block of `BLOCK`
// folds into the f64 lanes in order, so the results are bit-identical.
// Compiled from the portable code, the sixteen lanes were split across
// registers of three widths plus scalars, several times slower.

use crate::cpu::lanes::{mask as lanes, LaneSums, BLOCK};
use crate::cpu::vec16::F32x16;

simd_fn! {
    /// Sums `term(i, mask)` (the two terms of elements `i..i + 16`, `mask`
    /// the lanes inside the slice) over `len` elements, block by block into
    /// `acc`.
    #[inline]
    unsafe fn blocks(len: usize, acc: &mut LaneSums, mut term: impl FnMut(usize, u16) -> (V, V)) {
        let mut start = 0;
        while start < len {
            let end = (start + BLOCK).min(len);
            let (mut s, mut q) = (V::zero(), V::zero());
            for i in (start..end).step_by(16) {
                let m = lanes(end - i);
                let (ds, dq) = term(i, m);
                s = V::mask_add(m, s, ds);
                q = V::mask_add(m, q, dq);
            }
            V::add_to_f64(acc[0].as_mut_ptr(), s);
            V::add_to_f64(acc[1].as_mut_ptr(), q);
            start = end;
        }
    }
}

simd_fn! {
    /// See `simd::shifted_sums`.
    pub unsafe fn shifted_sums(x: &[f32], k: f32, acc: &mut LaneSums) {
        let k = V::splat(k);
        blocks(x.len(), acc, |i, m| {
            let d = V::sub(V::maskz_load(m, x.as_ptr().add(i)), k);
            (d, V::mul(d, d))
        });
    }
}

simd_fn! {
    /// See `simd::grad_sums`; `x.len() >= dy.len()`.
    pub unsafe fn grad_sums(dy: &[f32], x: &[f32], m: f32, acc: &mut LaneSums) {
        assert!(x.len() >= dy.len());
        let mean = V::splat(m);
        blocks(dy.len(), acc, |i, mk| {
            let d = V::maskz_load(mk, dy.as_ptr().add(i));
            let v = V::maskz_load(mk, x.as_ptr().add(i));
            (d, V::mul(d, V::sub(v, mean)))
        });
    }
}

simd_fn! {
    /// See `simd::grad_sums_relu`; `x.len() >= dy.len()`.
    pub unsafe fn grad_sums_relu(
        dy: &[f32],
        x: &[f32],
        m: f32,
        (sa, sb): (f32, f32),
        acc: &mut LaneSums,
    ) {
        assert!(x.len() >= dy.len());
        let (mean, sa, sb) = (V::splat(m), V::splat(sa), V::splat(sb));
        blocks(dy.len(), acc, |i, mk| {
            let v = V::maskz_load(mk, x.as_ptr().add(i));
            let pre = V::add(V::mul(v, sa), sb);
            let d = V::keep_if_positive(V::maskz_load(mk, dy.as_ptr().add(i)), pre);
            (d, V::mul(d, V::sub(v, mean)))
        });
    }
}

simd_fn! {
    /// `out = dy` where `y > 0`, else 0, over `len` elements, and its sums:
    /// the body of both masked forms (`out` may be `dy`, for the in-place
    /// one).
    #[inline]
    unsafe fn masked_sums(
        (out, dy, len): (*mut f32, *const f32, usize),
        y: &[f32],
        x: &[f32],
        m: f32,
        acc: &mut LaneSums,
    ) {
        assert!(y.len() >= len && x.len() >= len);
        let mean = V::splat(m);
        blocks(len, acc, |i, mk| {
            let yv = V::maskz_load(mk, y.as_ptr().add(i));
            let d = V::keep_if_positive(V::maskz_load(mk, dy.add(i)), yv);
            V::mask_store(out.add(i), mk, d);
            let v = V::maskz_load(mk, x.as_ptr().add(i));
            (d, V::mul(d, V::sub(v, mean)))
        });
    }
}

simd_fn! {
    /// See `simd::masked_grad_sums`; `dy`, `y` and `x` at least as long as
    /// `o`.
    pub unsafe fn masked_grad_sums(
        o: &mut [f32],
        dy: &[f32],
        y: &[f32],
        x: &[f32],
        m: f32,
        acc: &mut LaneSums,
    ) {
        assert!(dy.len() >= o.len());
        masked_sums((o.as_mut_ptr(), dy.as_ptr(), o.len()), y, x, m, acc);
    }
}

simd_fn! {
    /// See `simd::masked_grad_sums_in_place`; `y` and `x` at least as long
    /// as `d`.
    pub unsafe fn masked_grad_sums_in_place(
        d: &mut [f32],
        y: &[f32],
        x: &[f32],
        m: f32,
        acc: &mut LaneSums,
    ) {
        let p = d.as_mut_ptr();
        masked_sums((p, p, d.len()), y, x, m, acc);
    }
}
