//! A 16-lane f32 vector over two instruction sets, so that a kernel written
//! once over [`F32x16`] compiles to AVX-512 (`__m512`, one instruction per
//! operation) or to AVX2 + FMA (a pair of `__m256`).
//!
//! The methods are `#[inline(always)]` and carry no target features: a
//! kernel file is `include!`d once per level into a module that names its
//! vector type `V` and gives every kernel function that level's
//! `#[target_feature]` (see [`super::winograd`]'s `x86::avx512` and
//! `x86::avx2`), so the intrinsics inline there, closures included. Every operation gives
//! the same result lane by lane at both levels (the same roundings: fused
//! multiply-adds are fused at both), so the levels agree bit for bit.
//!
//! Masks are bit masks of the lanes (`u16`, bit `l` for lane `l`), as
//! AVX-512 takes them; the AVX2 side turns them into vector masks.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

/// Sixteen f32 lanes. All methods are unsafe: they need the level's target
/// features (the caller's), and the memory ones valid pointers for the
/// lanes they touch.
pub(crate) trait F32x16: Copy {
    /// A lane permutation of two sources, from [`F32x16::index`].
    type Perm: Copy;
    /// Sixteen i32 lanes (gather and scatter offsets).
    type Ints: Copy;

    unsafe fn zero() -> Self;
    unsafe fn splat(v: f32) -> Self;
    unsafe fn add(a: Self, b: Self) -> Self;
    unsafe fn sub(a: Self, b: Self) -> Self;
    unsafe fn mul(a: Self, b: Self) -> Self;
    unsafe fn max(a: Self, b: Self) -> Self;
    /// `a * b + c`, rounded once.
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self;
    /// `c - a * b`, rounded once.
    unsafe fn fnmadd(a: Self, b: Self, c: Self) -> Self;
    /// `max(a, b)` in the lanes of `mask`, zero in the others.
    unsafe fn maskz_max(mask: u16, a: Self, b: Self) -> Self;
    unsafe fn load(p: *const f32) -> Self;
    unsafe fn store(p: *mut f32, v: Self);
    /// The lanes of `mask` from `p`, zero in the others (which `p` need
    /// not cover).
    unsafe fn maskz_load(mask: u16, p: *const f32) -> Self;
    /// Stores the lanes of `mask` only.
    unsafe fn mask_store(p: *mut f32, mask: u16, v: Self);
    /// Lanes 0..8 of `lo`, lanes 8..16 of `hi`.
    unsafe fn halves(lo: Self, hi: Self) -> Self;
    /// A permutation: output lane `l` takes lane `lanes[l]` of the 32 lanes
    /// of `a` (0..16) then `b` (16..32).
    unsafe fn index(lanes: [i32; 16]) -> Self::Perm;
    unsafe fn permute2(a: Self, p: Self::Perm, b: Self) -> Self;
    unsafe fn ints(lanes: &[i32; 16]) -> Self::Ints;
    unsafe fn ints_add(a: Self::Ints, k: i32) -> Self::Ints;
    /// Lane `l` from `base[idx[l]]` in the lanes of `mask`, else zero.
    unsafe fn gather(mask: u16, idx: Self::Ints, base: *const f32) -> Self;
    /// `base[idx[l]] = v[l]` in the lanes of `mask`, in lane order.
    unsafe fn scatter(base: *mut f32, mask: u16, idx: Self::Ints, v: Self);
    /// `r` transposed: lane `i` of vector `k` is lane `k` of `r[i]`.
    unsafe fn transpose16(r: [Self; 16]) -> [Self; 16];
    /// Lanes 0..8 of `a` and `b` interleaved: `a0 b0 a1 b1 .. a7 b7`.
    unsafe fn zip_lo(a: Self, b: Self) -> Self;
    /// Lanes 8..16 of `a` and `b` interleaved: `a8 b8 .. a15 b15`.
    unsafe fn zip_hi(a: Self, b: Self) -> Self;
    /// The even lanes of `a`, then those of `b`: `a0 a2 .. a14 b0 .. b14`.
    unsafe fn unzip_even(a: Self, b: Self) -> Self;
    /// The odd lanes of `a`, then those of `b`: `a1 a3 .. a15 b1 .. b15`.
    unsafe fn unzip_odd(a: Self, b: Self) -> Self;
    /// For `j` in `0..4`: lanes `0..8` of vector `j` are lanes `j, j + 4,
    /// .., j + 28` of the 32 lanes of `a[0]` then `a[1]`, lanes `8..16` the
    /// same lanes of `b`.
    unsafe fn every_fourth(a: [Self; 2], b: [Self; 2]) -> [Self; 4];
    /// Each 8-lane half of `d` moved down one lane, its top lane taken from
    /// `t`: lane `2 k` of `t` for the lower half, `2 k + 1` for the upper.
    unsafe fn shift_in_halves<const K: i32>(d: Self, t: Self) -> Self;
    /// Output lane `l` is lane `p[l] % 16` of `v` in the lanes of `mask`,
    /// zero in the others (`p` from [`F32x16::index`], lanes below 16).
    unsafe fn maskz_permute(mask: u16, p: Self::Perm, v: Self) -> Self;
    /// `a + b` in the lanes of `mask`, `a` in the others.
    unsafe fn mask_add(mask: u16, a: Self, b: Self) -> Self;
    /// `d` where `y > 0` (ordered: NaN counts as not), else +0.
    unsafe fn keep_if_positive(d: Self, y: Self) -> Self;
    /// Adds the lanes, widened to f64, to the 16 f64 values at `p`.
    unsafe fn add_to_f64(p: *mut f64, v: Self);
}

/// The permutation of [`F32x16::zip_lo`] (`half` 0) or `zip_hi` (1).
const fn zip_lanes(half: i32) -> [i32; 16] {
    let mut l = [0; 16];
    let mut i = 0;
    while i < 16 {
        l[i] = 8 * half + (i as i32) / 2 + 16 * (i as i32 % 2);
        i += 1;
    }
    l
}

/// The permutation of [`F32x16::unzip_even`] (`odd` 0) or `unzip_odd` (1).
const fn unzip_lanes(odd: i32) -> [i32; 16] {
    let mut l = [0; 16];
    let mut i = 0;
    while i < 16 {
        l[i] = 2 * i as i32 + odd;
        i += 1;
    }
    l
}

impl F32x16 for __m512 {
    type Perm = __m512i;
    type Ints = __m512i;

    #[inline(always)]
    unsafe fn zero() -> Self {
        _mm512_setzero_ps()
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        _mm512_set1_ps(v)
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        _mm512_add_ps(a, b)
    }
    #[inline(always)]
    unsafe fn sub(a: Self, b: Self) -> Self {
        _mm512_sub_ps(a, b)
    }
    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        _mm512_mul_ps(a, b)
    }
    #[inline(always)]
    unsafe fn max(a: Self, b: Self) -> Self {
        _mm512_max_ps(a, b)
    }
    #[inline(always)]
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
        _mm512_fmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn fnmadd(a: Self, b: Self, c: Self) -> Self {
        _mm512_fnmadd_ps(a, b, c)
    }
    #[inline(always)]
    unsafe fn maskz_max(mask: u16, a: Self, b: Self) -> Self {
        _mm512_maskz_max_ps(mask, a, b)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        _mm512_loadu_ps(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self) {
        _mm512_storeu_ps(p, v)
    }
    #[inline(always)]
    unsafe fn maskz_load(mask: u16, p: *const f32) -> Self {
        _mm512_maskz_loadu_ps(mask, p)
    }
    #[inline(always)]
    unsafe fn mask_store(p: *mut f32, mask: u16, v: Self) {
        _mm512_mask_storeu_ps(p, mask, v)
    }
    #[inline(always)]
    unsafe fn halves(lo: Self, hi: Self) -> Self {
        _mm512_mask_blend_ps(0xff00, lo, hi)
    }
    #[inline(always)]
    unsafe fn index(lanes: [i32; 16]) -> Self::Perm {
        _mm512_loadu_epi32(lanes.as_ptr())
    }
    #[inline(always)]
    unsafe fn permute2(a: Self, p: Self::Perm, b: Self) -> Self {
        _mm512_permutex2var_ps(a, p, b)
    }
    #[inline(always)]
    unsafe fn ints(lanes: &[i32; 16]) -> Self::Ints {
        _mm512_loadu_si512(lanes.as_ptr() as *const _)
    }
    #[inline(always)]
    unsafe fn ints_add(a: Self::Ints, k: i32) -> Self::Ints {
        _mm512_add_epi32(a, _mm512_set1_epi32(k))
    }
    #[inline(always)]
    unsafe fn gather(mask: u16, idx: Self::Ints, base: *const f32) -> Self {
        _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, idx, base)
    }
    #[inline(always)]
    unsafe fn scatter(base: *mut f32, mask: u16, idx: Self::Ints, v: Self) {
        _mm512_mask_i32scatter_ps::<4>(base, mask, idx, v)
    }
    #[inline(always)]
    unsafe fn transpose16(r: [Self; 16]) -> [Self; 16] {
        let pd = |a: __m512| _mm512_castps_pd(a);
        let ps = |a: __m512d| _mm512_castpd_ps(a);
        // Pairs of rows interleaved by 32, then by 64 bits, then 128-bit
        // lanes gathered across four rows and across eight.
        let t: [__m512; 16] = std::array::from_fn(|k| {
            let (a, b) = (r[k / 2 * 2], r[k / 2 * 2 + 1]);
            if k % 2 == 0 {
                _mm512_unpacklo_ps(a, b)
            } else {
                _mm512_unpackhi_ps(a, b)
            }
        });
        let u: [__m512; 16] = std::array::from_fn(|k| {
            let (i, m) = (k / 4, k % 4);
            let (a, b) = (pd(t[4 * i + m / 2]), pd(t[4 * i + 2 + m / 2]));
            if m % 2 == 0 {
                ps(_mm512_unpacklo_pd(a, b))
            } else {
                ps(_mm512_unpackhi_pd(a, b))
            }
        });
        let v: [__m512; 16] = std::array::from_fn(|k| {
            let (i, h, m) = (k / 8, (k / 4) % 2, k % 4);
            let (a, b) = (u[8 * i + m], u[8 * i + 4 + m]);
            if h == 0 {
                _mm512_shuffle_f32x4::<0x88>(a, b)
            } else {
                _mm512_shuffle_f32x4::<0xdd>(a, b)
            }
        });
        std::array::from_fn(|k| {
            let (a, b) = (v[k % 8], v[8 + k % 8]);
            if k < 8 {
                _mm512_shuffle_f32x4::<0x88>(a, b)
            } else {
                _mm512_shuffle_f32x4::<0xdd>(a, b)
            }
        })
    }
    #[inline(always)]
    unsafe fn zip_lo(a: Self, b: Self) -> Self {
        Self::permute2(a, Self::index(zip_lanes(0)), b)
    }
    #[inline(always)]
    unsafe fn zip_hi(a: Self, b: Self) -> Self {
        Self::permute2(a, Self::index(zip_lanes(1)), b)
    }
    #[inline(always)]
    unsafe fn unzip_even(a: Self, b: Self) -> Self {
        Self::permute2(a, Self::index(unzip_lanes(0)), b)
    }
    #[inline(always)]
    unsafe fn unzip_odd(a: Self, b: Self) -> Self {
        Self::permute2(a, Self::index(unzip_lanes(1)), b)
    }
    #[inline(always)]
    unsafe fn every_fourth(a: [Self; 2], b: [Self; 2]) -> [Self; 4] {
        std::array::from_fn(|j| {
            let idx = Self::index(std::array::from_fn(|l| (4 * (l % 8) + j) as i32));
            Self::halves(
                Self::permute2(a[0], idx, a[1]),
                Self::permute2(b[0], idx, b[1]),
            )
        })
    }
    #[inline(always)]
    unsafe fn shift_in_halves<const K: i32>(d: Self, t: Self) -> Self {
        let idx = std::array::from_fn(|l| match l {
            7 => 16 + 2 * K,
            15 => 17 + 2 * K,
            _ => l as i32 + 1,
        });
        Self::permute2(d, Self::index(idx), t)
    }
    #[inline(always)]
    unsafe fn maskz_permute(mask: u16, p: Self::Perm, v: Self) -> Self {
        _mm512_maskz_permutexvar_ps(mask, p, v)
    }
    #[inline(always)]
    unsafe fn mask_add(mask: u16, a: Self, b: Self) -> Self {
        _mm512_mask_add_ps(a, mask, a, b)
    }
    #[inline(always)]
    unsafe fn keep_if_positive(d: Self, y: Self) -> Self {
        _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(y, _mm512_setzero_ps()), d)
    }
    #[inline(always)]
    unsafe fn add_to_f64(p: *mut f64, v: Self) {
        let bits = _mm512_castps_pd(v);
        let lo = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_castpd512_pd256(bits)));
        let hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(bits)));
        _mm512_storeu_pd(p, _mm512_add_pd(_mm512_loadu_pd(p), lo));
        _mm512_storeu_pd(p.add(8), _mm512_add_pd(_mm512_loadu_pd(p.add(8)), hi));
    }
}

/// Sixteen lanes as two AVX2 vectors: lanes 0..8, then 8..16.
#[derive(Clone, Copy)]
pub(crate) struct F32x8x2(__m256, __m256);

/// The AVX2 form of a two-source permutation, per output half: the lane
/// within a source vector, and the blend masks (in the sign bits) that pick
/// the upper vector of a source (index bit 3) and the second source (bit 4).
#[derive(Clone, Copy)]
pub(crate) struct Perm8x2 {
    lane: [__m256i; 2],
    upper: [__m256; 2],
    second: [__m256; 2],
}

/// The vector mask of an 8-bit mask (all ones in a lane of the mask, zero
/// elsewhere).
#[inline(always)]
unsafe fn vector_mask(m: u16) -> __m256i {
    let bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(m as i32), bits), bits)
}

/// The vector masks of the two halves of a bit mask.
#[inline(always)]
unsafe fn vector_masks(mask: u16) -> (__m256i, __m256i) {
    (vector_mask(mask & 0xff), vector_mask(mask >> 8))
}

/// The lanes of the 8-bit mask `m` from `p`, zero in the others: a plain
/// load when all are set, none when none are (masked stores and loads are
/// slow on some CPUs, and the mask of a ragged row is whole in most halves).
#[inline(always)]
unsafe fn maskz_load_half(m: u16, p: *const f32) -> __m256 {
    match m {
        0xff => _mm256_loadu_ps(p),
        0 => _mm256_setzero_ps(),
        _ => _mm256_maskload_ps(p, vector_mask(m)),
    }
}

/// Stores the lanes of the 8-bit mask `m` (as [`maskz_load_half`] loads).
#[inline(always)]
unsafe fn mask_store_half(p: *mut f32, m: u16, v: __m256) {
    match m {
        0xff => _mm256_storeu_ps(p, v),
        0 => {}
        _ => _mm256_maskstore_ps(p, vector_mask(m), v),
    }
}

impl F32x16 for F32x8x2 {
    type Perm = Perm8x2;
    type Ints = (__m256i, __m256i);

    #[inline(always)]
    unsafe fn zero() -> Self {
        F32x8x2(_mm256_setzero_ps(), _mm256_setzero_ps())
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> Self {
        F32x8x2(_mm256_set1_ps(v), _mm256_set1_ps(v))
    }
    #[inline(always)]
    unsafe fn add(a: Self, b: Self) -> Self {
        F32x8x2(_mm256_add_ps(a.0, b.0), _mm256_add_ps(a.1, b.1))
    }
    #[inline(always)]
    unsafe fn sub(a: Self, b: Self) -> Self {
        F32x8x2(_mm256_sub_ps(a.0, b.0), _mm256_sub_ps(a.1, b.1))
    }
    #[inline(always)]
    unsafe fn mul(a: Self, b: Self) -> Self {
        F32x8x2(_mm256_mul_ps(a.0, b.0), _mm256_mul_ps(a.1, b.1))
    }
    #[inline(always)]
    unsafe fn max(a: Self, b: Self) -> Self {
        F32x8x2(_mm256_max_ps(a.0, b.0), _mm256_max_ps(a.1, b.1))
    }
    #[inline(always)]
    unsafe fn fmadd(a: Self, b: Self, c: Self) -> Self {
        F32x8x2(
            _mm256_fmadd_ps(a.0, b.0, c.0),
            _mm256_fmadd_ps(a.1, b.1, c.1),
        )
    }
    #[inline(always)]
    unsafe fn fnmadd(a: Self, b: Self, c: Self) -> Self {
        F32x8x2(
            _mm256_fnmadd_ps(a.0, b.0, c.0),
            _mm256_fnmadd_ps(a.1, b.1, c.1),
        )
    }
    #[inline(always)]
    unsafe fn maskz_max(mask: u16, a: Self, b: Self) -> Self {
        let (lo, hi) = vector_masks(mask);
        let m = Self::max(a, b);
        F32x8x2(
            _mm256_and_ps(m.0, _mm256_castsi256_ps(lo)),
            _mm256_and_ps(m.1, _mm256_castsi256_ps(hi)),
        )
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        F32x8x2(_mm256_loadu_ps(p), _mm256_loadu_ps(p.wrapping_add(8)))
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self) {
        _mm256_storeu_ps(p, v.0);
        _mm256_storeu_ps(p.wrapping_add(8), v.1);
    }
    #[inline(always)]
    unsafe fn maskz_load(mask: u16, p: *const f32) -> Self {
        F32x8x2(
            maskz_load_half(mask & 0xff, p),
            maskz_load_half(mask >> 8, p.wrapping_add(8)),
        )
    }
    #[inline(always)]
    unsafe fn mask_store(p: *mut f32, mask: u16, v: Self) {
        mask_store_half(p, mask & 0xff, v.0);
        mask_store_half(p.wrapping_add(8), mask >> 8, v.1);
    }
    #[inline(always)]
    unsafe fn halves(lo: Self, hi: Self) -> Self {
        F32x8x2(lo.0, hi.1)
    }
    #[inline(always)]
    unsafe fn index(lanes: [i32; 16]) -> Self::Perm {
        let half = |h: usize| _mm256_loadu_si256(lanes.as_ptr().add(8 * h) as *const __m256i);
        let (a, b) = (half(0), half(1));
        Perm8x2 {
            lane: [a, b],
            upper: [
                _mm256_castsi256_ps(_mm256_slli_epi32::<28>(a)),
                _mm256_castsi256_ps(_mm256_slli_epi32::<28>(b)),
            ],
            second: [
                _mm256_castsi256_ps(_mm256_slli_epi32::<27>(a)),
                _mm256_castsi256_ps(_mm256_slli_epi32::<27>(b)),
            ],
        }
    }
    #[inline(always)]
    unsafe fn permute2(a: Self, p: Self::Perm, b: Self) -> Self {
        let half = |h: usize| {
            let i = p.lane[h];
            let from_a = _mm256_blendv_ps(
                _mm256_permutevar8x32_ps(a.0, i),
                _mm256_permutevar8x32_ps(a.1, i),
                p.upper[h],
            );
            let from_b = _mm256_blendv_ps(
                _mm256_permutevar8x32_ps(b.0, i),
                _mm256_permutevar8x32_ps(b.1, i),
                p.upper[h],
            );
            _mm256_blendv_ps(from_a, from_b, p.second[h])
        };
        F32x8x2(half(0), half(1))
    }
    #[inline(always)]
    unsafe fn ints(lanes: &[i32; 16]) -> Self::Ints {
        let p = lanes.as_ptr() as *const __m256i;
        (_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1)))
    }
    #[inline(always)]
    unsafe fn ints_add(a: Self::Ints, k: i32) -> Self::Ints {
        let k = _mm256_set1_epi32(k);
        (_mm256_add_epi32(a.0, k), _mm256_add_epi32(a.1, k))
    }
    #[inline(always)]
    unsafe fn gather(mask: u16, idx: Self::Ints, base: *const f32) -> Self {
        let (lo, hi) = vector_masks(mask);
        let z = _mm256_setzero_ps();
        F32x8x2(
            _mm256_mask_i32gather_ps::<4>(z, base, idx.0, _mm256_castsi256_ps(lo)),
            _mm256_mask_i32gather_ps::<4>(z, base, idx.1, _mm256_castsi256_ps(hi)),
        )
    }
    #[inline(always)]
    unsafe fn scatter(base: *mut f32, mask: u16, idx: Self::Ints, v: Self) {
        let (mut vs, mut is) = ([0f32; 16], [0i32; 16]);
        Self::store(vs.as_mut_ptr(), v);
        _mm256_storeu_si256(is.as_mut_ptr() as *mut __m256i, idx.0);
        _mm256_storeu_si256(is.as_mut_ptr().add(8) as *mut __m256i, idx.1);
        let mut m = mask;
        while m != 0 {
            let l = m.trailing_zeros() as usize;
            *base.offset(is[l] as isize) = vs[l];
            m &= m - 1;
        }
    }
    #[inline(always)]
    unsafe fn transpose16(r: [Self; 16]) -> [Self; 16] {
        // Four 8 x 8 blocks: rows 0..8 or 8..16, lanes 0..8 or 8..16.
        let block = |rows: usize, upper: bool| {
            transpose8(std::array::from_fn(|i| {
                let v = r[rows + i];
                if upper {
                    v.1
                } else {
                    v.0
                }
            }))
        };
        let (a, b) = (block(0, false), block(8, false));
        let (c, d) = (block(0, true), block(8, true));
        std::array::from_fn(|k| {
            if k < 8 {
                F32x8x2(a[k], b[k])
            } else {
                F32x8x2(c[k - 8], d[k - 8])
            }
        })
    }
    #[inline(always)]
    unsafe fn zip_lo(a: Self, b: Self) -> Self {
        zip8(a.0, b.0)
    }
    #[inline(always)]
    unsafe fn zip_hi(a: Self, b: Self) -> Self {
        zip8(a.1, b.1)
    }
    #[inline(always)]
    unsafe fn unzip_even(a: Self, b: Self) -> Self {
        F32x8x2(unzip8::<0x88>(a), unzip8::<0x88>(b))
    }
    #[inline(always)]
    unsafe fn unzip_odd(a: Self, b: Self) -> Self {
        F32x8x2(unzip8::<0xdd>(a), unzip8::<0xdd>(b))
    }
    #[inline(always)]
    unsafe fn every_fourth(a: [Self; 2], b: [Self; 2]) -> [Self; 4] {
        let (pa, pb) = (
            every_fourth8([a[0].0, a[0].1, a[1].0, a[1].1]),
            every_fourth8([b[0].0, b[0].1, b[1].0, b[1].1]),
        );
        std::array::from_fn(|j| F32x8x2(pa[j], pb[j]))
    }
    #[inline(always)]
    unsafe fn shift_in_halves<const K: i32>(d: Self, t: Self) -> Self {
        assert!(
            (0..4).contains(&K),
            "the top lanes come from the lower half of t"
        );
        let down = _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0);
        let half = |v: __m256, lane: i32| {
            let top = _mm256_permutevar8x32_ps(t.0, _mm256_set1_epi32(lane));
            _mm256_blend_ps::<0x80>(_mm256_permutevar8x32_ps(v, down), top)
        };
        F32x8x2(half(d.0, 2 * K), half(d.1, 2 * K + 1))
    }
    #[inline(always)]
    unsafe fn maskz_permute(mask: u16, p: Self::Perm, v: Self) -> Self {
        let (lo, hi) = vector_masks(mask);
        let w = Self::permute2(v, p, v);
        F32x8x2(
            _mm256_and_ps(w.0, _mm256_castsi256_ps(lo)),
            _mm256_and_ps(w.1, _mm256_castsi256_ps(hi)),
        )
    }
    #[inline(always)]
    unsafe fn mask_add(mask: u16, a: Self, b: Self) -> Self {
        let (lo, hi) = vector_masks(mask);
        let s = Self::add(a, b);
        F32x8x2(
            _mm256_blendv_ps(a.0, s.0, _mm256_castsi256_ps(lo)),
            _mm256_blendv_ps(a.1, s.1, _mm256_castsi256_ps(hi)),
        )
    }
    #[inline(always)]
    unsafe fn keep_if_positive(d: Self, y: Self) -> Self {
        let z = _mm256_setzero_ps();
        F32x8x2(
            _mm256_and_ps(d.0, _mm256_cmp_ps::<_CMP_GT_OQ>(y.0, z)),
            _mm256_and_ps(d.1, _mm256_cmp_ps::<_CMP_GT_OQ>(y.1, z)),
        )
    }
    #[inline(always)]
    unsafe fn add_to_f64(p: *mut f64, v: Self) {
        for (k, half) in [v.0, v.1].into_iter().enumerate() {
            let q = p.add(8 * k);
            let lo = _mm256_cvtps_pd(_mm256_castps256_ps128(half));
            let hi = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(half));
            _mm256_storeu_pd(q, _mm256_add_pd(_mm256_loadu_pd(q), lo));
            _mm256_storeu_pd(q.add(4), _mm256_add_pd(_mm256_loadu_pd(q.add(4)), hi));
        }
    }
}

/// Vector `j` holds lanes `j, j + 4, .., j + 28` of the 32 lanes of `r`: a
/// 4 x 4 transpose within each 128-bit half (lane `j` of every vector in the
/// low half, lane `4 + j` in the high one), then those put in order.
#[inline(always)]
unsafe fn every_fourth8(r: [__m256; 4]) -> [__m256; 4] {
    let t = [
        _mm256_unpacklo_ps(r[0], r[1]),
        _mm256_unpackhi_ps(r[0], r[1]),
        _mm256_unpacklo_ps(r[2], r[3]),
        _mm256_unpackhi_ps(r[2], r[3]),
    ];
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let put = |v: __m256| _mm256_permutevar8x32_ps(v, order);
    [
        put(_mm256_shuffle_ps::<0x44>(t[0], t[2])),
        put(_mm256_shuffle_ps::<0xee>(t[0], t[2])),
        put(_mm256_shuffle_ps::<0x44>(t[1], t[3])),
        put(_mm256_shuffle_ps::<0xee>(t[1], t[3])),
    ]
}

/// `a` and `b` (8 lanes each) interleaved into 16 lanes.
#[inline(always)]
unsafe fn zip8(a: __m256, b: __m256) -> F32x8x2 {
    // a0 b0 a1 b1 | a4 b4 a5 b5, and a2 b2 a3 b3 | a6 b6 a7 b7.
    let (lo, hi) = (_mm256_unpacklo_ps(a, b), _mm256_unpackhi_ps(a, b));
    F32x8x2(
        _mm256_permute2f128_ps::<0x20>(lo, hi),
        _mm256_permute2f128_ps::<0x31>(lo, hi),
    )
}

/// The even (`SEL` 0x88) or odd (0xdd) lanes of the 16 lanes of `v`.
#[inline(always)]
unsafe fn unzip8<const SEL: i32>(v: F32x8x2) -> __m256 {
    // v0 v2 v8 v10 | v4 v6 v12 v14, then the 64-bit pairs in order.
    let s = _mm256_shuffle_ps::<SEL>(v.0, v.1);
    _mm256_castpd_ps(_mm256_permute4x64_pd::<0xd8>(_mm256_castps_pd(s)))
}

/// `r` transposed (8 x 8): rows interleaved by 32 bits, then 64, then
/// 128-bit halves exchanged.
#[inline(always)]
unsafe fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    let t: [__m256; 8] = std::array::from_fn(|k| {
        let (a, b) = (r[k / 2 * 2], r[k / 2 * 2 + 1]);
        if k % 2 == 0 {
            _mm256_unpacklo_ps(a, b)
        } else {
            _mm256_unpackhi_ps(a, b)
        }
    });
    let u: [__m256; 8] = std::array::from_fn(|k| {
        let (i, m) = (k / 4, k % 4);
        let (a, b) = (t[4 * i + m / 2], t[4 * i + 2 + m / 2]);
        if m % 2 == 0 {
            _mm256_shuffle_ps::<0x44>(a, b)
        } else {
            _mm256_shuffle_ps::<0xee>(a, b)
        }
    });
    std::array::from_fn(|k| {
        if k < 4 {
            _mm256_permute2f128_ps::<0x20>(u[k], u[4 + k])
        } else {
            _mm256_permute2f128_ps::<0x31>(u[k - 4], u[k])
        }
    })
}

/// Marks a kernel function of the AVX-512 build (`simd_fn!` in a kernel
/// file included by [`kernels_at_each_level`]).
macro_rules! avx512_fn {
    ($(#[$m:meta])* $vis:vis unsafe fn $($rest:tt)*) => {
        $(#[$m])*
        #[target_feature(enable = "avx512f")]
        $vis unsafe fn $($rest)*
    };
}

/// Marks a kernel function of the AVX2 + FMA build.
macro_rules! avx2_fn {
    ($(#[$m:meta])* $vis:vis unsafe fn $($rest:tt)*) => {
        $(#[$m])*
        #[target_feature(enable = "avx2,fma")]
        $vis unsafe fn $($rest)*
    };
}

/// Modules `avx512` and `avx2` with the kernels of one file (in this
/// folder) compiled for each level: the file names its vector type `V` and
/// declares its functions through `simd_fn!`, which adds the level's
/// target features.
macro_rules! kernels_at_each_level {
    ($vis:vis, $file:literal) => {
        /// The kernels on AVX-512 (`__m512`).
        $vis mod avx512 {
            type V = std::arch::x86_64::__m512;
            use crate::cpu::vec16::avx512_fn as simd_fn;
            include!($file);
        }

        /// The same kernels on AVX2 and FMA (pairs of `__m256`).
        $vis mod avx2 {
            type V = crate::cpu::vec16::F32x8x2;
            use crate::cpu::vec16::avx2_fn as simd_fn;
            include!($file);
        }
    };
}

pub(crate) use {avx2_fn, avx512_fn, kernels_at_each_level};

#[cfg(test)]
mod tests {
    use super::super::testing::require_avx512;
    use super::*;

    /// `V::transpose16` of a 16 x 16 matrix, through `V`'s loads and stores.
    fn transposes<V: F32x16>() {
        let m: Vec<f32> = (0..256).map(|i| i as f32).collect();
        let mut out = vec![0f32; 256];
        // SAFETY: the callers check that the CPU has `V`'s features; every
        // load and store is one row of the 16 x 16 buffers.
        unsafe {
            let rows = std::array::from_fn(|r| V::load(m.as_ptr().add(16 * r)));
            for (k, v) in V::transpose16(rows).iter().enumerate() {
                V::store(out.as_mut_ptr().add(16 * k), *v);
            }
        }
        for k in 0..16 {
            for i in 0..16 {
                assert_eq!(out[16 * k + i], m[16 * i + k], "lane {i} of vector {k}");
            }
        }
    }

    #[test]
    #[cfg_attr(
        not(build_cpu_avx512),
        ignore = "needs AVX-512 (F and VL), which this CPU lacks"
    )]
    fn avx512_transpose16_transposes() {
        require_avx512();
        transposes::<__m512>();
    }

    /// `zip_lo`, `zip_hi`, `unzip_even` and `unzip_odd` against their lane
    /// lists.
    fn permutes<V: F32x16>() {
        let (a, b): (Vec<f32>, Vec<f32>) = (
            (0..16).map(|i| i as f32).collect(),
            (16..32).map(|i| i as f32).collect(),
        );
        type Permute<V> = unsafe fn(V, V) -> V;
        let cases: [(Permute<V>, [i32; 16]); 4] = [
            (V::zip_lo, zip_lanes(0)),
            (V::zip_hi, zip_lanes(1)),
            (V::unzip_even, unzip_lanes(0)),
            (V::unzip_odd, unzip_lanes(1)),
        ];
        // every_fourth: a and b as the 32 lanes 0..32, and 100..132.
        let (a2, b2): (Vec<f32>, Vec<f32>) = (
            (0..32).map(|i| i as f32).collect(),
            (100..132).map(|i| i as f32).collect(),
        );
        let mut out = [[0f32; 16]; 4];
        // SAFETY: as in `transposes`.
        unsafe {
            let two = |v: &[f32]| [V::load(v.as_ptr()), V::load(v.as_ptr().add(16))];
            for (o, v) in out.iter_mut().zip(V::every_fourth(two(&a2), two(&b2))) {
                V::store(o.as_mut_ptr(), v);
            }
        }
        for (j, o) in out.iter().enumerate() {
            let want: Vec<f32> = (0..16)
                .map(|l| (4 * (l % 8) + j + 100 * (l / 8)) as f32)
                .collect();
            assert_eq!(o.to_vec(), want, "every_fourth {j}");
        }
        // shift_in_halves, K = 1: lanes 1..8 then t's lane 2; 9..16 then t's lane 3.
        let mut out = [0f32; 16];
        // SAFETY: as in `transposes`.
        unsafe {
            let v = V::shift_in_halves::<1>(V::load(a.as_ptr()), V::load(b.as_ptr()));
            V::store(out.as_mut_ptr(), v);
        }
        let want: Vec<f32> = (0..16)
            .map(|l| match l {
                7 => b[2],
                15 => b[3],
                _ => a[l + 1],
            })
            .collect();
        assert_eq!(out.to_vec(), want, "shift_in_halves");
        for (k, (f, lanes)) in cases.into_iter().enumerate() {
            let mut out = [0f32; 16];
            // SAFETY: as in `transposes`.
            unsafe {
                V::store(
                    out.as_mut_ptr(),
                    f(V::load(a.as_ptr()), V::load(b.as_ptr())),
                )
            };
            let expected: Vec<f32> = lanes.iter().map(|&l| l as f32).collect();
            assert_eq!(out.to_vec(), expected, "permutation {k}");
        }
    }

    #[test]
    #[cfg_attr(
        not(build_cpu_avx512),
        ignore = "needs AVX-512 (F and VL), which this CPU lacks"
    )]
    fn avx512_zips_and_unzips() {
        require_avx512();
        permutes::<__m512>();
    }

    #[test]
    fn avx2_zips_and_unzips() {
        if !super::super::testing::cpu_has_avx2() {
            return;
        }
        permutes::<F32x8x2>();
    }

    #[test]
    fn avx2_transpose16_transposes() {
        if !super::super::testing::cpu_has_avx2() {
            return;
        }
        transposes::<F32x8x2>();
    }
}
