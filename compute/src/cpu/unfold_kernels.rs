// The fast unfolds of `conv` (im2col and col2im at strides 1 and 2),
// written once over the 16-lane vector `V` (`F32x16`): `include!`d by
// `conv::x86::avx512` and `conv::x86::avx2` (`vec16::kernels_at_each_level!`).

use super::row_masks;
use crate::cpu::lanes::mask as lanes;
use crate::cpu::vec16::F32x16;
use crate::geometry::ConvGeom;

simd_fn! {
    /// Stride-1 im2col: each output row is 16-column masked loads and
    /// stores, zero where the window leaves the image.
    pub unsafe fn im2col_s1(g: &ConvGeom, x: *const f32, col: *mut f32, ld: usize) {
        let pad = g.pad as isize;
        for c in 0..g.c {
            let plane = x.add(c * g.h * g.w);
            for i in 0..g.kh {
                // Output rows whose source row lies inside the image.
                let oy_lo = (pad - i as isize).clamp(0, g.ho as isize) as usize;
                let oy_hi =
                    (g.h as isize + pad - i as isize).clamp(oy_lo as isize, g.ho as isize) as usize;
                for j in 0..g.kw {
                    let row = col.add(((c * g.kh + i) * g.kw + j) * ld);
                    let mut ox0 = 0;
                    while ox0 < g.wo {
                        let (from, m, store) = row_masks(g, ox0, j);
                        let zero = V::zero();
                        for oy in (0..oy_lo).chain(oy_hi..g.ho) {
                            V::mask_store(row.add(oy * g.wo + ox0), store, zero);
                        }
                        for oy in oy_lo..oy_hi {
                            let iy = oy as isize - pad + i as isize;
                            let src = plane.wrapping_offset(iy * g.w as isize + from);
                            let v = V::maskz_load(m, src);
                            V::mask_store(row.add(oy * g.wo + ox0), store, v);
                        }
                        ox0 += 16;
                    }
                }
            }
        }
    }
}

simd_fn! {
    /// The 16 columns of a row from column `from` on, zero outside `0..w`.
    #[inline]
    unsafe fn cols16(row: *const f32, w: usize, from: isize) -> V {
        let lo = (-from).clamp(0, 16) as usize;
        let hi = (w as isize - from).clamp(0, 16) as usize;
        V::maskz_load(lanes(hi) & !lanes(lo), row.wrapping_offset(from))
    }
}

simd_fn! {
    /// Stride-2 im2col: 16 output columns from 32 source columns (two
    /// masked loads, the even lanes picked out), zero where the window
    /// leaves the image.
    pub unsafe fn im2col_s2(g: &ConvGeom, x: *const f32, col: *mut f32, ld: usize) {
        let pad = g.pad as isize;
        for c in 0..g.c {
            let plane = x.add(c * g.h * g.w);
            for i in 0..g.kh {
                for j in 0..g.kw {
                    let row = col.add(((c * g.kh + i) * g.kw + j) * ld);
                    for oy in 0..g.ho {
                        let iy = 2 * oy as isize - pad + i as isize;
                        let inside = (0..g.h as isize).contains(&iy);
                        let src = plane.wrapping_offset(iy * g.w as isize);
                        for ox0 in (0..g.wo).step_by(16) {
                            let v = if inside {
                                let from = 2 * ox0 as isize + j as isize - pad;
                                let (a, b) = (cols16(src, g.w, from), cols16(src, g.w, from + 16));
                                V::unzip_even(a, b)
                            } else {
                                V::zero()
                            };
                            V::mask_store(row.add(oy * g.wo + ox0), lanes(g.wo - ox0), v);
                        }
                    }
                }
            }
        }
    }
}

simd_fn! {
    /// Stride-2 col2im: as [`col2im_s1`], each 16-column piece of a row of
    /// `dx` sums its windows' columns in the scalar order; a window column
    /// reaches every other `dx` column, so 16 `col` values are spread over
    /// the even (or odd) lanes.
    pub unsafe fn col2im_s2(g: &ConvGeom, col: *const f32, dx: *mut f32) {
        let pad = g.pad as isize;
        let p = g.ho * g.wo;
        // For each 16-column piece of a dx row and each kernel column j:
        // the first col column it reads, which lanes take one, and from where.
        let spread: Vec<Vec<(isize, u16, <V as F32x16>::Perm)>> = (0..g.w)
            .step_by(16)
            .map(|x0| {
                let n = (g.w - x0).min(16);
                (0..g.kw)
                    .map(|j| {
                        // dx column x0 + l takes col column (x0 + l + pad - j) / 2
                        // where that is whole and inside the output.
                        let first = x0 as isize + pad - j as isize;
                        let ox0 = first.div_euclid(2);
                        let mut take: u16 = 0;
                        let idx: [i32; 16] = std::array::from_fn(|l| {
                            let ox2 = first + l as isize;
                            if ox2 >= 0 && ox2 % 2 == 0 && ox2 / 2 < g.wo as isize && l < n {
                                take |= 1 << l;
                            }
                            (ox2.div_euclid(2) - ox0) as i32 & 15
                        });
                        (ox0, take, V::index(idx))
                    })
                    .collect()
            })
            .collect();
        for c in 0..g.c {
            let plane = dx.add(c * g.h * g.w);
            for iy in 0..g.h {
                for (piece, taps) in spread.iter().enumerate() {
                    let x0 = 16 * piece;
                    let mut acc = V::zero();
                    for i in 0..g.kh {
                        let oy2 = iy as isize + pad - i as isize;
                        if oy2 < 0 || oy2 % 2 != 0 || oy2 / 2 >= g.ho as isize {
                            continue;
                        }
                        let oy = oy2 / 2;
                        for (j, &(ox0, take, idx)) in taps.iter().enumerate() {
                            let row = col.add(((c * g.kh + i) * g.kw + j) * p);
                            let src = cols16(row.wrapping_offset(oy * g.wo as isize), g.wo, ox0);
                            acc = V::add(acc, V::maskz_permute(take, idx, src));
                        }
                    }
                    V::mask_store(plane.add(iy * g.w + x0), lanes((g.w - x0).min(16)), acc);
                }
            }
        }
    }
}

simd_fn! {
    /// Stride-1 col2im: each 16-column piece of a row of `dx` sums its
    /// windows' columns of `col` in registers, in the scalar order (kernel
    /// row, then kernel column), and is stored once.
    pub unsafe fn col2im_s1(g: &ConvGeom, col: *const f32, dx: *mut f32) {
        let pad = g.pad as isize;
        let p = g.ho * g.wo;
        for c in 0..g.c {
            let plane = dx.add(c * g.h * g.w);
            for iy in 0..g.h {
                let mut x0 = 0;
                while x0 < g.w {
                    let n = (g.w - x0).min(16);
                    let mut acc = V::zero();
                    for i in 0..g.kh {
                        let oy = iy as isize + pad - i as isize;
                        if oy < 0 || oy >= g.ho as isize {
                            continue;
                        }
                        for j in 0..g.kw {
                            // dx column x0 + l takes col column x0 + l - shift.
                            let shift = j as isize - pad;
                            let lo = (shift - x0 as isize).clamp(0, 16) as usize;
                            let hi = (g.wo as isize + shift - x0 as isize).clamp(0, 16) as usize;
                            let m = lanes(hi.min(n)) & !lanes(lo);
                            let row = col.add(((c * g.kh + i) * g.kw + j) * p);
                            let src = row.wrapping_offset(oy * g.wo as isize + x0 as isize - shift);
                            acc = V::add(acc, V::maskz_load(m, src));
                        }
                    }
                    V::mask_store(plane.add(iy * g.w + x0), lanes(n), acc);
                    x0 += 16;
                }
            }
        }
    }
}
