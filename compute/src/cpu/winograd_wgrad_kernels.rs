// The x86 output-gradient transforms of the Winograd weight gradient,
// written once over the 16-lane vector `V` (`F32x16`): `include!`d by
// `winograd_wgrad::x86::avx512` and `winograd_wgrad::x86::avx2`, each of
// which defines `V` and `simd_fn!` (`vec16::kernels_at_each_level!`).

use crate::cpu::vec16::F32x16;
use crate::cpu::winograd::grid;
use crate::cpu::winograd::x86::column;
use crate::geometry::ConvGeom;

simd_fn! {
    /// `A u` for one line `u` of four values, `A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0;
    /// 0 1 1 4 4 0; 0 1 -1 8 -8 1]`.
    #[inline]
    unsafe fn a(u: [V; 4]) -> [V; 6] {
        let s02 = V::add(u[0], u[2]);
        let s13 = V::add(u[1], u[3]);
        let e = V::fmadd(V::splat(4.0), u[2], u[0]);
        let f = V::fmadd(
            V::splat(8.0),
            u[3],
            V::mul(V::splat(2.0), u[1]),
        );
        [
            u[0],
            V::add(s02, s13),
            V::sub(s02, s13),
            V::add(e, f),
            V::sub(e, f),
            u[3],
        ]
    }
}

simd_fn! {
    /// `A d A^T` of one 4x4 tile `d` (each element a vector over 16
    /// channels): A along each row, then down each column; point `(i, j)`
    /// goes to `row + (6 i + j) blk`.
    #[inline]
    pub(super) unsafe fn store_points(d: [[V; 4]; 4], row: *mut f32, blk: usize) {
        let rows = d.map(|r| a(r));
        for j in 0..6 {
            let col = a(column(&rows, j));
            for (i, v) in col.into_iter().enumerate() {
                V::store(row.add((i * 6 + j) * blk), v);
            }
        }
    }
}

simd_fn! {
    /// Lanes are 16 consecutive output channels: for each tile, each lane
    /// gathers the tile from its channel's plane (zero outside the image).
    pub unsafe fn grad_transform(
        g: &ConvGeom,
        dy: *const f32,
        nb: usize,
        m: *mut f32,
        os: usize,
        blk: usize,
    ) {
        let (th, tw) = grid(g);
        let p = g.ho * g.wo;
        let lane_planes = V::ints(&std::array::from_fn(|l| (l * p) as i32));
        let zero = V::zero();
        for img in 0..nb {
            for o0 in (0..g.o).step_by(16) {
                let mask = crate::cpu::lanes::mask(g.o - o0);
                let planes = dy.add((img * g.o + o0) * p);
                for ty in 0..th {
                    let oy = 4 * ty;
                    let rows = (g.ho - oy).min(4);
                    for tx in 0..tw {
                        let ox = 4 * tx;
                        let cols = (g.wo - ox).min(4);
                        let idx0 = V::ints_add(lane_planes, (oy * g.wo + ox) as i32);
                        let tile = std::array::from_fn(|i| {
                            std::array::from_fn(|j| {
                                if i < rows && j < cols {
                                    let idx = V::ints_add(idx0, (i * g.wo + j) as i32);
                                    V::gather(mask, idx, planes)
                                } else {
                                    zero
                                }
                            })
                        });
                        let row = m.add((img * th * tw + ty * tw + tx) * os + o0);
                        store_points(tile, row, blk);
                    }
                }
            }
        }
    }
}

simd_fn! {
    /// [`grad_transform`] where output rows are whole vectors (width a
    /// multiple of 16) and channels come in whole blocks of 16: each row of
    /// 16 columns of 16 channels is loaded and transposed, so that every tile
    /// element is one vector over the channels without gathers.
    pub unsafe fn grad_transform_rows(
        g: &ConvGeom,
        dy: *const f32,
        nb: usize,
        m: *mut f32,
        os: usize,
        blk: usize,
    ) {
        let (th, tw) = grid(g);
        let p = g.ho * g.wo;
        let zero = V::zero();
        for img in 0..nb {
            for o0 in (0..g.o).step_by(16) {
                let planes = dy.add((img * g.o + o0) * p);
                for ty in 0..th {
                    for cx in 0..g.wo / 16 {
                        // cols[r][k]: output row 4 ty + r, column 16 cx + k.
                        let cols: [[V; 16]; 4] = std::array::from_fn(|r| {
                            let oy = 4 * ty + r;
                            if oy >= g.ho {
                                return [zero; 16];
                            }
                            let at = oy * g.wo + 16 * cx;
                            V::transpose16(std::array::from_fn(|ch| {
                                V::load(planes.add(ch * p + at))
                            }))
                        });
                        for q in 0..4 {
                            let tx = 4 * cx + q;
                            let tile = std::array::from_fn(|r| {
                                std::array::from_fn(|j| cols[r][4 * q + j])
                            });
                            let row = m.add((img * th * tw + ty * tw + tx) * os + o0);
                            store_points(tile, row, blk);
                        }
                    }
                }
            }
        }
    }
}
