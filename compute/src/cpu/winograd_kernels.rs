// The x86 Winograd transform kernels, written once over the 16-lane vector
// `V` (`F32x16`): `include!`d by `winograd::x86::avx512` and
// `winograd::x86::avx2` (`vec16::kernels_at_each_level!`), each of which
// defines `V` and `simd_fn!` (which compiles a function for its instruction set).

use super::{column, tile_row};
use crate::cpu::lanes::mask as lanes;
use crate::cpu::vec16::F32x16;
use crate::cpu::winograd::grid;
use crate::geometry::{ConvGeom, Prologue};

/// A channel's prologue as `(scale, shift)` vectors.
type Affine = Option<(V, V)>;

/// Sixteen i32 lanes of `V` (gather and scatter offsets).
type Ints = <V as F32x16>::Ints;

simd_fn! {
    #[inline]
    unsafe fn affine_of(pro: Option<Prologue>, c: usize) -> Affine {
        pro.map(|p| (V::splat(p.scale[c]), V::splat(p.shift[c])))
    }
}

simd_fn! {
    /// `max(v * a + b, 0)` in the lanes of `mask` (rounded as the batch-norm
    /// kernels round it: a product, then a sum), zero in the others.
    #[inline]
    unsafe fn apply(v: V, mask: u16, aff: Affine) -> V {
        match aff {
            Some((a, b)) => {
                let y = V::add(V::mul(v, a), b);
                V::maskz_max(mask, y, V::zero())
            }
            None => v,
        }
    }
}

simd_fn! {
    /// 16 columns of a row from column `from` on, zero outside `0..w`.
    #[inline]
    unsafe fn load_cols(row: *const f32, w: usize, from: isize, aff: Affine) -> V {
        let lo = (-from).clamp(0, 16) as usize;
        let hi = (w as isize - from).clamp(0, 16) as usize;
        let mask = lanes(hi) & !lanes(lo);
        apply(
            V::maskz_load(mask, row.wrapping_offset(from)),
            mask,
            aff,
        )
    }
}

simd_fn! {
    /// `B^T d` for one line `d` of six values.
    #[inline]
    unsafe fn bt(d: [V; 6]) -> [V; 6] {
        let (four, five) = (V::splat(4.0), V::splat(5.0));
        let two = V::splat(2.0);
        let s12 = V::add(d[1], d[2]);
        let d12 = V::sub(d[1], d[2]);
        let s34 = V::add(d[3], d[4]);
        let d43 = V::sub(d[4], d[3]);
        let d42 = V::sub(d[4], d[2]);
        let d31 = V::sub(d[3], d[1]);
        [
            V::fnmadd(five, d[2], V::fmadd(four, d[0], d[4])),
            V::fnmadd(four, s12, s34),
            V::fmadd(four, d12, d43),
            V::fmadd(two, d31, d42),
            V::fnmadd(two, d31, d42),
            V::fnmadd(five, d[3], V::fmadd(four, d[1], d[5])),
        ]
    }
}

simd_fn! {
    /// `A^T m` for one line `m` of six values.
    #[inline]
    unsafe fn at(m: [V; 6]) -> [V; 4] {
        let s12 = V::add(m[1], m[2]);
        let d12 = V::sub(m[1], m[2]);
        let s34 = V::add(m[3], m[4]);
        let d34 = V::sub(m[3], m[4]);
        [
            V::add(V::add(m[0], s12), s34),
            V::fmadd(V::splat(2.0), d34, d12),
            V::fmadd(V::splat(4.0), s34, s12),
            V::add(V::fmadd(V::splat(8.0), d34, d12), m[5]),
        ]
    }
}

simd_fn! {
    /// Row `r` of the padded plane from column `cs` on, as the six columns of
    /// 16 consecutive tiles (`d[j][tx] = row[cs + 4 tx + j]`, zero outside),
    /// transformed along the row: `B^T d`.
    #[inline]
    unsafe fn row_tiles(
        g: &ConvGeom,
        plane: *const f32,
        aff: Affine,
        r: usize,
        cs: isize,
    ) -> [V; 6] {
        let iy = r as isize - g.pad as isize;
        if iy < 0 || iy >= g.h as isize {
            return [V::zero(); 6];
        }
        let row = plane.add(iy as usize * g.w);
        let l: [V; 5] =
            std::array::from_fn(|k| load_cols(row, g.w, cs + 16 * k as isize, aff));
        let mut d = [V::zero(); 6];
        for (j, dj) in d.iter_mut().take(4).enumerate() {
            let j = j as i32;
            // Lanes 0..8 from the first 32 columns, lanes 8..16 from the next 32.
            let idx = V::index([j, 4 + j, 8 + j, 12 + j, 16 + j, 20 + j, 24 + j, 28 + j, j, 4 + j, 8 + j, 12 + j, 16 + j, 20 + j, 24 + j, 28 + j]);
            let a = V::permute2(l[0], idx, l[1]);
            let b = V::permute2(l[2], idx, l[3]);
            *dj = V::halves(a, b);
        }
        // Columns 4 and 5 of tile tx are columns 0 and 1 of tile tx + 1.
        let next = V::index([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
        let next1 = V::index([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17]);
        d[4] = V::permute2(d[0], next, l[4]);
        d[5] = V::permute2(d[1], next1, l[4]);
        bt(d)
    }
}

simd_fn! {
    pub unsafe fn input_transform(
        g: &ConvGeom,
        x: *const f32,
        pro: Option<Prologue>,
        nb: usize,
        v: *mut f32,
        ts: usize,
        blk: usize,
    ) {
        let (th, tw) = grid(g);
        let pad = g.pad as isize;
        for img in 0..nb {
            for c in 0..g.c {
                let plane = x.add((img * g.c + c) * g.h * g.w);
                let aff = affine_of(pro, c);
                let mut tx0 = 0;
                while tx0 < tw {
                    let mask = lanes((tw - tx0).min(16));
                    let cs = 4 * tx0 as isize - pad;
                    // The window's last two rows are the next one's first two.
                    let mut top = [
                        row_tiles(g, plane, aff, 0, cs),
                        row_tiles(g, plane, aff, 1, cs),
                    ];
                    for ty in 0..th {
                        let rk = |k| row_tiles(g, plane, aff, 4 * ty + k, cs);
                        let r = [top[0], top[1], rk(2), rk(3), rk(4), rk(5)];
                        top = [r[4], r[5]];
                        let base = img * th * tw + ty * tw + tx0;
                        // B^T along each column j of the row-transformed tile.
                        for j in 0..6 {
                            let col = bt(column(&r, j));
                            for (i, o) in col.into_iter().enumerate() {
                                let at = (i * 6 + j) * blk + c * ts + base;
                                V::mask_store(v.add(at), mask, o);
                            }
                        }
                    }
                    tx0 += 16;
                }
            }
        }
    }
}

simd_fn! {
    /// [`interleave`] undone: lane `4 k + tx` of vector `dx` is lane
    /// `4 tx + dx` of `r[k]`.
    #[inline]
    unsafe fn deinterleave(r: [V; 4]) -> [V; 4] {
        let unzip = |a: V, b: V| (V::unzip_even(a, b), V::unzip_odd(a, b));
        let (p_lo, q_lo) = unzip(r[0], r[1]);
        let (p_hi, q_hi) = unzip(r[2], r[3]);
        let (y0, y2) = unzip(p_lo, p_hi);
        let (y1, y3) = unzip(q_lo, q_hi);
        [y0, y1, y2, y3]
    }
}

simd_fn! {
    /// Input tiles of 16 x 16 images with padding 1: an image's 4 x 4 tiles
    /// fill one vector (lane `4 ty + tx`). For each row `i` of the tiles'
    /// windows, the image rows `4 ty + i - 1` loaded from columns -1 and 3
    /// and [`deinterleave`]d give the window's six columns (no gathers).
    pub unsafe fn input_transform_16x16(
        g: &ConvGeom,
        x: *const f32,
        pro: Option<Prologue>,
        nb: usize,
        v: *mut f32,
        ts: usize,
        blk: usize,
    ) {
        let zero = V::zero();
        for img in 0..nb {
            for c in 0..g.c {
                let plane = x.add((img * g.c + c) * 256);
                let aff = affine_of(pro, c);
                // Image row `r` (zero outside the image) from column `from` on.
                let row = |r: isize, from: isize| {
                    if (0..16).contains(&r) {
                        load_cols(plane.offset(16 * r), 16, from, aff)
                    } else {
                        zero
                    }
                };
                let ri = |i: usize| {
                    let rows = |from| std::array::from_fn(|k| row((4 * k + i) as isize - 1, from));
                    let [d0, d1, d2, d3] = deinterleave(rows(-1));
                    let [d4, d5, _, _] = deinterleave(rows(3));
                    bt([d0, d1, d2, d3, d4, d5])
                };
                // Written out, as in `input_transform_32x32`.
                let r = [ri(0), ri(1), ri(2), ri(3), ri(4), ri(5)];
                let at0 = c * ts + img * 16;
                for j in 0..6 {
                    for (i, o) in bt(column(&r, j)).into_iter().enumerate() {
                        V::store(v.add((i * 6 + j) * blk + at0), o);
                    }
                }
            }
        }
    }
}

simd_fn! {
    /// One row of the windows of two rows of 8 tiles: `a` and `b` are image
    /// rows from padded column 0 on (three vectors each, zero outside), and
    /// column `j` of the result holds padded column `4 tx + j` of `a` in
    /// lane `tx` and of `b` in lane `8 + tx`.
    #[inline]
    unsafe fn window_row_pair(a: [V; 3], b: [V; 3]) -> [V; 6] {
        let [d0, d1, d2, d3] = V::every_fourth([a[0], a[1]], [b[0], b[1]]);
        // Columns 4 and 5 of tile tx are columns 0 and 1 of tile tx + 1; the
        // last tile of each row takes padded columns 32 and 33 from `tail`.
        let tail = V::zip_lo(a[2], b[2]);
        let d4 = V::shift_in_halves::<0>(d0, tail);
        let d5 = V::shift_in_halves::<1>(d1, tail);
        [d0, d1, d2, d3, d4, d5]
    }
}

simd_fn! {
    /// Input tiles of 32 x 32 images with padding 1: each vector holds two
    /// rows of tiles (tile rows `ty` and `ty + 1` in lanes `tx` and
    /// `8 + tx`), so that every vector and store is whole; for window row
    /// `k`, image rows `4 ty + k - 1` and `4 ty + k + 3` fill the halves.
    pub unsafe fn input_transform_32x32(
        g: &ConvGeom,
        x: *const f32,
        pro: Option<Prologue>,
        nb: usize,
        v: *mut f32,
        ts: usize,
        blk: usize,
    ) {
        let zero = V::zero();
        for img in 0..nb {
            for c in 0..g.c {
                let plane = x.add((img * g.c + c) * 1024);
                let aff = affine_of(pro, c);
                // Image row `r` from padded column 0 (image column -1) on.
                let row = |r: isize| -> [V; 3] {
                    if (0..32).contains(&r) {
                        let p = plane.offset(32 * r);
                        [-1, 15, 31].map(|from| load_cols(p, 32, from, aff))
                    } else {
                        [zero; 3]
                    }
                };
                for ty in (0..8).step_by(2) {
                    let top = 4 * ty as isize - 1;
                    // Written out rather than `array::from_fn`, which at AVX2
                    // (the tile spilt from the 16 registers) became a copy.
                    let rk = |k| bt(window_row_pair(row(top + k), row(top + k + 4)));
                    let r = [rk(0), rk(1), rk(2), rk(3), rk(4), rk(5)];
                    let at0 = c * ts + img * 64 + ty * 8;
                    for j in 0..6 {
                        for (i, o) in bt(column(&r, j)).into_iter().enumerate() {
                            V::store(v.add((i * 6 + j) * blk + at0), o);
                        }
                    }
                }
            }
        }
    }
}

simd_fn! {
    /// Input tiles by gathers: lanes are 16 consecutive tiles of the group,
    /// whatever their rows and images, so narrow images fill the lanes too.
    pub unsafe fn input_transform_gather(
        g: &ConvGeom,
        x: *const f32,
        pro: Option<Prologue>,
        nb: usize,
        v: *mut f32,
        ts: usize,
        blk: usize,
    ) {
        let (th, tw) = grid(g);
        let tiles = th * tw;
        let t_all = nb * tiles;
        let (h, w, pad) = (g.h as isize, g.w as isize, g.pad as isize);
        let plane = g.h * g.w;
        let mut t0 = 0;
        while t0 < t_all {
            // Per lane: offset of the tile's top-left input (channel 0), and
            // which of its 6 rows and 6 columns lie inside the image.
            let mut base = [0i32; 16];
            let (mut rowm, mut colm) = ([0u16; 6], [0u16; 6]);
            for (l, b) in base.iter_mut().enumerate() {
                let t = t0 + l;
                if t >= t_all {
                    continue;
                }
                let (img, r) = (t / tiles, t % tiles);
                let (iy, ix) = (4 * (r / tw) as isize - pad, 4 * (r % tw) as isize - pad);
                *b = ((img * g.c * plane) as isize + iy * w + ix) as i32;
                for k in 0..6 {
                    if (0..h).contains(&(iy + k as isize)) {
                        rowm[k] |= 1 << l;
                    }
                    if (0..w).contains(&(ix + k as isize)) {
                        colm[k] |= 1 << l;
                    }
                }
            }
            let vbase = V::ints(&base);
            let idx: [[Ints; 6]; 6] = std::array::from_fn(|i| {
                std::array::from_fn(|j| {
                    V::ints_add(vbase, (i as isize * w) as i32 + j as i32)
                })
            });
            for c in 0..g.c {
                let src = x.add(c * plane) as *const u8;
                let aff = affine_of(pro, c);
                let ri = |i: usize| {
                    bt(std::array::from_fn(|j| {
                        let mask = rowm[i] & colm[j];
                        let v = V::gather(mask, idx[i][j], src as *const f32);
                        apply(v, mask, aff)
                    }))
                };
                // Written out, as in `input_transform_32x32`.
                let r = [ri(0), ri(1), ri(2), ri(3), ri(4), ri(5)];
                let at0 = c * ts + t0;
                for j in 0..6 {
                    let col = bt(column(&r, j));
                    for (i, o) in col.into_iter().enumerate() {
                        V::store(v.add((i * 6 + j) * blk + at0), o);
                    }
                }
            }
            t0 += 16;
        }
    }
}

simd_fn! {
    /// Output tiles by scatters: lanes are 16 consecutive tiles of the
    /// group, whatever their rows and images, so narrow images fill the
    /// lanes too.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn output_transform_scatter(
        g: &ConvGeom,
        m: *const f32,
        ts: usize,
        blk: usize,
        nb: usize,
        bias: Option<&[f32]>,
        res: Option<*const f32>,
        relu: bool,
        y: *mut f32,
    ) {
        let (th, tw) = grid(g);
        let tiles = th * tw;
        let t_all = nb * tiles;
        let p = g.ho * g.wo;
        let zero = V::zero();
        let mut t0 = 0;
        while t0 < t_all {
            // Per lane: offset of the tile's top-left output (channel 0), and
            // which of its 4 rows and 4 columns lie inside the image.
            let mut base = [0i32; 16];
            let (mut rowm, mut colm) = ([0u16; 4], [0u16; 4]);
            for (l, b) in base.iter_mut().enumerate() {
                let t = t0 + l;
                if t >= t_all {
                    continue;
                }
                let (img, r) = (t / tiles, t % tiles);
                let (oy, ox) = (4 * (r / tw), 4 * (r % tw));
                *b = (img * g.o * p + oy * g.wo + ox) as i32;
                for k in 0..4 {
                    if oy + k < g.ho {
                        rowm[k] |= 1 << l;
                    }
                    if ox + k < g.wo {
                        colm[k] |= 1 << l;
                    }
                }
            }
            let vbase = V::ints(&base);
            let idx: [[Ints; 4]; 4] = std::array::from_fn(|i| {
                std::array::from_fn(|j| {
                    V::ints_add(vbase, (i * g.wo + j) as i32)
                })
            });
            for o in 0..g.o {
                let b = V::splat(bias.map_or(0.0, |b| b[o]));
                let yp = y.add(o * p);
                let s = at_columns(|pt| V::load(m.add(pt * blk + o * ts + t0)));
                for dy in 0..4 {
                    let srow = tile_row(&s, dy);
                    if rowm[dy] == 0 {
                        break;
                    }
                    for (k, mut v) in at(srow).into_iter().enumerate() {
                        let mask = rowm[dy] & colm[k];
                        v = V::add(v, b);
                        if let Some(r) = res {
                            let r =
                                V::gather(mask, idx[dy][k], r.add(o * p));
                            v = V::add(v, r);
                        }
                        if relu {
                            v = V::max(v, zero);
                        }
                        V::scatter(yp, mask, idx[dy][k], v);
                    }
                }
            }
            t0 += 16;
        }
    }
}

simd_fn! {
    /// `A^T` down each column `j` of a tile's products (`load(p)` gives point
    /// `p = 6 i + j`): the tile's six columns of four rows, each row still to
    /// transform along.
    #[inline]
    unsafe fn at_columns(load: impl Fn(usize) -> V) -> [[V; 4]; 6] {
        // Kept column by column (rows are read with `tile_row`): at AVX2,
        // where a tile does not fit the 16 registers, turning it into rows
        // here was a memset and copies through the stack.
        let col = |j| at([load(j), load(6 + j), load(12 + j), load(18 + j), load(24 + j), load(30 + j)]);
        [col(0), col(1), col(2), col(3), col(4), col(5)]
    }
}

simd_fn! {
    /// Output values `y[dx]` (lane `l`: column `dx` of tile `l`, one tile row
    /// of 16 tiles) in column order: lane `q` of vector `k` holds column
    /// `q % 4` of tile `4 k + q / 4`.
    #[inline]
    unsafe fn interleave(y: [V; 4]) -> [V; 4] {
        let p_lo = V::zip_lo(y[0], y[2]);
        let p_hi = V::zip_hi(y[0], y[2]);
        let q_lo = V::zip_lo(y[1], y[3]);
        let q_hi = V::zip_hi(y[1], y[3]);
        [
            V::zip_lo(p_lo, q_lo),
            V::zip_hi(p_lo, q_lo),
            V::zip_lo(p_hi, q_hi),
            V::zip_hi(p_hi, q_hi),
        ]
    }
}

simd_fn! {
    /// Output tiles where every tile is whole (`4 th x 4 tw` outputs) and
    /// four consecutive tiles lie in one tile row or span whole rows
    /// (`tw` a multiple of 4, or 1 or 2): lanes are 16 consecutive tiles of
    /// the group, whatever their rows and images, and [`interleave`] turns
    /// each output row `dy` of them into runs of image row `4 ty + dy`,
    /// stored whole (16 columns), or in halves or quarters for narrower
    /// images. No scatters, and no lane left empty.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn output_transform_packed(
        g: &ConvGeom,
        m: *const f32,
        ts: usize,
        blk: usize,
        nb: usize,
        bias: Option<&[f32]>,
        res: Option<*const f32>,
        relu: bool,
        y: *mut f32,
    ) {
        let (th, tw) = grid(g);
        let tiles = th * tw;
        let t_all = nb * tiles;
        // Tiles per run of one image row: 4, or the whole tile row.
        let run = tw.min(4);
        let p = g.ho * g.wo;
        let zero = V::zero();
        for t0 in (0..t_all).step_by(16) {
            let n = (t_all - t0).min(16);
            // Per run of tiles: the lanes it fills, and where in channel 0
            // its first tile's top row starts (of the run's lanes, lane
            // `lane0` lands there). A fixed array: this runs per 16 tiles.
            let mut runs = [(0_u16, 0usize); 16];
            let n_runs = n.div_ceil(run);
            for (ri, first) in (0..n).step_by(run).enumerate() {
                let t = t0 + first;
                let (img, r) = (t / tiles, t % tiles);
                let at = img * g.o * p + 4 * (r / tw) * g.wo + 4 * (r % tw);
                let lane0 = 4 * (first % 4);
                let mask = lanes(lane0 + 4 * run) & !lanes(lane0);
                runs[ri] = (mask, at.wrapping_sub(lane0));
            }
            let per_vector = 4 / run;
            for o in 0..g.o {
                let b = V::splat(bias.map_or(0.0, |b| b[o]));
                let src = m.add(o * ts + t0);
                let s = at_columns(|pt| V::maskz_load(lanes(n), src.add(pt * blk)));
                for dy in 0..4 {
                    let srow = tile_row(&s, dy);
                    let outs = interleave(at(srow).map(|v| V::add(v, b)));
                    let shift = o * p + dy * g.wo;
                    // Vector k holds tiles t0 + 4 k .. t0 + 4 k + 3: runs
                    // `per_vector k ..` of them (indexed statically, so that
                    // the vectors stay in registers).
                    for (k, &out) in outs.iter().enumerate() {
                        let first_run = k * per_vector;
                        for &(mask, base) in
                            &runs[first_run.min(n_runs)..(first_run + per_vector).min(n_runs)]
                        {
                            let mut v = out;
                            let at = base.wrapping_add(shift);
                            if let Some(rp) = res {
                                v = V::add(
                                    v,
                                    V::maskz_load(mask, rp.wrapping_add(at)),
                                );
                            }
                            if relu {
                                v = V::max(v, zero);
                            }
                            V::mask_store(y.wrapping_add(at), mask, v);
                        }
                    }
                }
            }
        }
    }
}

simd_fn! {
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn output_transform(
        g: &ConvGeom,
        m: *const f32,
        ts: usize,
        blk: usize,
        nb: usize,
        bias: Option<&[f32]>,
        res: Option<*const f32>,
        relu: bool,
        y: *mut f32,
    ) {
        let (th, tw) = grid(g);
        let p = g.ho * g.wo;
        let zero = V::zero();
        for img in 0..nb {
            for o in 0..g.o {
                let b = V::splat(bias.map_or(0.0, |b| b[o]));
                let yp = y.add((img * g.o + o) * p);
                let rp = res.map(|r| r.add((img * g.o + o) * p));
                let mut tx0 = 0;
                while tx0 < tw {
                    let mask = lanes((tw - tx0).min(16));
                    // Output columns 4 tx0 .. of this block inside the image.
                    let cols = g.wo - 4 * tx0;
                    let masks: [u16; 4] =
                        std::array::from_fn(|q| lanes(cols.saturating_sub(16 * q)));
                    for ty in 0..th {
                        let base = img * th * tw + ty * tw + tx0;
                        // A^T down each column j, then A^T along each row.
                        let s = at_columns(|pt| {
                            V::maskz_load(mask, m.add(pt * blk + o * ts + base))
                        });
                        for dy in 0..4 {
                    let srow = tile_row(&s, dy);
                            let oy = 4 * ty + dy;
                            if oy >= g.ho {
                                break;
                            }
                            // Lane q of vector k: column 4 (4 k + q / 4) + q % 4
                            // of the block.
                            let outs = interleave(at(srow).map(|v| V::add(v, b)));
                            let at = oy * g.wo + 4 * tx0;
                            for (q, &out) in outs.iter().enumerate() {
                                let mut v = out;
                                if masks[q] == 0 {
                                    break;
                                }
                                if let Some(rp) = rp {
                                    let r = V::maskz_load(masks[q], rp.add(at + 16 * q));
                                    v = V::add(v, r);
                                }
                                if relu {
                                    v = V::max(v, zero);
                                }
                                V::mask_store(yp.add(at + 16 * q), masks[q], v);
                            }
                        }
                    }
                    tx0 += 16;
                }
            }
        }
    }
}
