//! The batch-norm statistics sums of [`super::simd`] on AVX-512 registers.
//!
//! Each keeps the portable versions' order exactly: lane `l` of a block adds
//! elements `l, l + 16, ...` one at a time (a product, then a sum, never
//! fused), lanes past a slice's end are left alone, and each block of
//! [`BLOCK`] folds into the f64 lanes in order, so the results are
//! bit-identical. Compiled from the portable code, the sixteen lanes were
//! split across registers of three widths plus scalars, several times slower.

use std::arch::x86_64::*;

use super::lanes::{mask as lanes, LaneSums, BLOCK};

/// Adds the two f32 lane sums of a block to the f64 lanes of `acc`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn fold(acc: &mut LaneSums, s: __m512, q: __m512) {
    for (a, v) in acc.iter_mut().zip([s, q]) {
        let bits = _mm512_castps_pd(v);
        let lo = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_castpd512_pd256(bits)));
        let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(bits)));
        let p = a.as_mut_ptr();
        _mm512_storeu_pd(p, _mm512_add_pd(_mm512_loadu_pd(p), lo));
        _mm512_storeu_pd(p.add(8), _mm512_add_pd(_mm512_loadu_pd(p.add(8)), hi));
    }
}

/// Sums `term(i, mask)` (the two terms of elements `i..i + 16`, `mask` the
/// lanes inside the slice) over `len` elements, block by block into `acc`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn blocks(
    len: usize,
    acc: &mut LaneSums,
    mut term: impl FnMut(usize, __mmask16) -> (__m512, __m512),
) {
    let mut start = 0;
    while start < len {
        let end = (start + BLOCK).min(len);
        let (mut s, mut q) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        for i in (start..end).step_by(16) {
            let m = lanes(end - i);
            let (ds, dq) = term(i, m);
            s = _mm512_mask_add_ps(s, m, s, ds);
            q = _mm512_mask_add_ps(q, m, q, dq);
        }
        fold(acc, s, q);
        start = end;
    }
}

/// `d` where `y > 0` (ordered: NaN counts as not), else +0.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn keep_if_positive(d: __m512, y: __m512) -> __m512 {
    _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(y, _mm512_setzero_ps()), d)
}

/// See [`super::simd::shifted_sums`].
#[target_feature(enable = "avx512f")]
pub unsafe fn shifted_sums(x: &[f32], k: f32, acc: &mut LaneSums) {
    let k = _mm512_set1_ps(k);
    blocks(x.len(), acc, |i, m| {
        let d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x.as_ptr().add(i)), k);
        (d, _mm512_mul_ps(d, d))
    });
}

/// See [`super::simd::grad_sums`]; `x.len() >= dy.len()`.
#[target_feature(enable = "avx512f")]
pub unsafe fn grad_sums(dy: &[f32], x: &[f32], m: f32, acc: &mut LaneSums) {
    assert!(x.len() >= dy.len());
    let mean = _mm512_set1_ps(m);
    blocks(dy.len(), acc, |i, mk| {
        let d = _mm512_maskz_loadu_ps(mk, dy.as_ptr().add(i));
        let v = _mm512_maskz_loadu_ps(mk, x.as_ptr().add(i));
        (d, _mm512_mul_ps(d, _mm512_sub_ps(v, mean)))
    });
}

/// See [`super::simd::grad_sums_relu`]; `x.len() >= dy.len()`.
#[target_feature(enable = "avx512f")]
pub unsafe fn grad_sums_relu(
    dy: &[f32],
    x: &[f32],
    m: f32,
    (sa, sb): (f32, f32),
    acc: &mut LaneSums,
) {
    assert!(x.len() >= dy.len());
    let (mean, sa, sb) = (_mm512_set1_ps(m), _mm512_set1_ps(sa), _mm512_set1_ps(sb));
    blocks(dy.len(), acc, |i, mk| {
        let v = _mm512_maskz_loadu_ps(mk, x.as_ptr().add(i));
        let pre = _mm512_add_ps(_mm512_mul_ps(v, sa), sb);
        let d = keep_if_positive(_mm512_maskz_loadu_ps(mk, dy.as_ptr().add(i)), pre);
        (d, _mm512_mul_ps(d, _mm512_sub_ps(v, mean)))
    });
}

/// `out = dy` where `y > 0`, else 0, over `len` elements, and its sums:
/// the body of both masked forms (`out` may be `dy`, for the in-place one).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn masked_sums(
    (out, dy, len): (*mut f32, *const f32, usize),
    y: &[f32],
    x: &[f32],
    m: f32,
    acc: &mut LaneSums,
) {
    assert!(y.len() >= len && x.len() >= len);
    let mean = _mm512_set1_ps(m);
    blocks(len, acc, |i, mk| {
        let yv = _mm512_maskz_loadu_ps(mk, y.as_ptr().add(i));
        let d = keep_if_positive(_mm512_maskz_loadu_ps(mk, dy.add(i)), yv);
        _mm512_mask_storeu_ps(out.add(i), mk, d);
        let v = _mm512_maskz_loadu_ps(mk, x.as_ptr().add(i));
        (d, _mm512_mul_ps(d, _mm512_sub_ps(v, mean)))
    });
}

/// See [`super::simd::masked_grad_sums`]; `dy`, `y` and `x` at least as
/// long as `o`.
#[target_feature(enable = "avx512f")]
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

/// See [`super::simd::masked_grad_sums_in_place`]; `y` and `x` at least as
/// long as `d`.
#[target_feature(enable = "avx512f")]
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
