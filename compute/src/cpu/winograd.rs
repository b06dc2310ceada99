//! Winograd F(4x4, 3x3) for stride-1 3x3 convolutions: each 4x4 output
//! tile comes from a 6x6 input tile through 36 products per channel pair
//! instead of 144 (F(2x2, 3x3) would need 64 for the same outputs).
//!
//! Interpolation points 0, 1, -1, 2, -2 and infinity (Lavin & Gray):
//! `V = B^T d B`, `U = G g G^T` (computed in f64, then rounded),
//! `M[xi] = U[xi] * V[xi]` (one GEMM `[O, C] x [C, tiles]` per position `xi`
//! of the 6x6 transformed tile, on the AVX-512 kernel of
//! [`super::gemm512`] or the AVX2 one of [`super::gemm256`]), and the output
//! tile is `A^T M A`. Tiles of several images form one GEMM so that its columns
//! stay long, grouped by a rule of the shape only, so every output element
//! is a fixed sequence of operations on its inputs whatever the thread
//! count. The data gradient is this forward on the flipped weights; the
//! weight gradient is in [`super::winograd_wgrad`].
//!
//! The transforms are written once, in `winograd_kernels.rs`, over the
//! 16-lane vector of [`super::vec16`], and compiled for AVX-512 and for
//! AVX2 + FMA ([`x86::avx512`], [`x86::avx2`]).

use rayon::prelude::*;

use super::gemm256;
use super::gemm512::matmul_nn_ld;
use super::norm::{group_moments, BnGeom, Moments};
use super::simd::{level, AVX2, AVX512};
use crate::buffers::Scratch;
use crate::geometry::{ConvGeom, Epilogue, Prologue};

/// `$f(args)` from the x86 kernels of `level`: AVX-512, or AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
macro_rules! at_level {
    ($level:expr, $f:ident($($a:expr),* $(,)?)) => {
        if $level >= AVX512 {
            x86::avx512::$f($($a),*)
        } else {
            x86::avx2::$f($($a),*)
        }
    };
}

/// Whether the Winograd path runs for this geometry (it needs the AVX2 or
/// AVX-512 level, and enough channels that the transforms are cheap next to
/// the products).
pub fn applies(g: &ConvGeom) -> bool {
    fits(g) && level() >= AVX2
}

/// Whether the geometry is one the Winograd kernels take.
fn fits(g: &ConvGeom) -> bool {
    g.kh == 3
        && g.kw == 3
        && g.stride == 1
        && g.pad <= 2
        && g.c >= 8
        && g.o >= 8
        && g.ho > 0
        && g.wo > 0
}

/// Checks that the kernels of `level` run on this CPU.
fn check_level(level: u8) {
    assert!((AVX2..=AVX512).contains(&level) && level <= super::simd::detected_level());
}

/// Transform points per tile.
pub(crate) const POINTS: usize = 36;

/// Row stride of the transformed tiles for `t` columns, and the stride of
/// one position's block of `rows` rows: padded by a cache line each so that
/// the transform points' streams do not fall into the same cache sets.
pub(crate) fn strides(t: usize, rows: usize) -> (usize, usize) {
    let ts = t.next_multiple_of(16) + 16;
    (ts, rows * ts + 16)
}

/// The bounds the unsafe input-transform kernels rely on: `nb` images fit in
/// `x`, and [`POINTS`] blocks of `g.c` rows of all the images' tiles fit in `v`.
fn check_input(g: &ConvGeom, (x_len, nb): (usize, usize), v_len: usize, (ts, blk): (usize, usize)) {
    let (th, tw) = grid(g);
    assert!(x_len >= nb * g.c * g.h * g.w && v_len >= POINTS * blk);
    assert!(ts >= nb * th * tw && blk >= g.c * ts);
}

/// The bounds the unsafe output-transform kernels rely on: [`POINTS`] blocks
/// of `g.o` rows of all the images' tiles in `m`, and `nb` images of output
/// (and residual, and `g.o` biases) in place.
fn check_output(
    g: &ConvGeom,
    m_len: usize,
    (ts, blk): (usize, usize),
    (nb, ep, res): (usize, &Epilogue, Option<&[f32]>),
    y_len: usize,
) {
    let (th, tw) = grid(g);
    assert!(ts >= nb * th * tw && blk >= g.o * ts && m_len >= POINTS * blk);
    assert!(y_len >= nb * g.o * g.p() && ep.bias.is_none_or(|b| b.len() >= g.o));
    assert!(res.is_none_or(|r| r.len() >= nb * g.o * g.p()));
}

/// Tile grid of a geometry: `(rows, cols)` of 4x4 output tiles.
pub(crate) fn grid(g: &ConvGeom) -> (usize, usize) {
    (g.ho.div_ceil(4), g.wo.div_ceil(4))
}

/// Images per GEMM: enough tiles for long GEMM rows, few enough that the
/// transformed tiles stay in the core's cache. A function of the shape only.
pub(crate) fn images_per_group(g: &ConvGeom) -> usize {
    let (th, tw) = grid(g);
    let target: usize = if g.c.max(g.o) <= 16 { 128 } else { 64 };
    target.div_ceil(th * tw).clamp(1, g.n.max(1))
}

/// `G v` for a column `v = [a, b, c]` of 3x3 kernels, `L` kernels at a time
/// (lane by lane, so that it compiles to vector arithmetic).
fn g_column<const L: usize>(a: [f64; L], b: [f64; L], c: [f64; L]) -> [[f64; L]; 6] {
    let lanes = |f: &dyn Fn(usize) -> f64| -> [f64; L] { std::array::from_fn(f) };
    [
        lanes(&|l| a[l] / 4.0),
        lanes(&|l| -(a[l] + b[l] + c[l]) / 6.0),
        lanes(&|l| -(a[l] - b[l] + c[l]) / 6.0),
        lanes(&|l| a[l] / 24.0 + b[l] / 12.0 + c[l] / 6.0),
        lanes(&|l| a[l] / 24.0 - b[l] / 12.0 + c[l] / 6.0),
        c,
    ]
}

/// Kernels transformed together by [`weight_transform`].
const LANES: usize = 8;

/// `U[xi][o][c] = (G w[o][c] G^T)[xi]`, computed in f64 (in parallel over
/// the output channels, each into its `[xi][c]` block, [`LANES`] input
/// channels at a time; then copied into point-major order a row at a time).
pub(crate) fn weight_transform(g: &ConvGeom, w: &[f32]) -> Vec<f32> {
    let (o_n, c_n) = (g.o, g.c);
    let uo = o_n * c_n;
    let mut per_out = crate::buffers::uninit_f32(POINTS * uo);
    per_out
        .par_chunks_mut(POINTS * c_n)
        .enumerate()
        .for_each(|(o, out)| {
            for c0 in (0..c_n).step_by(LANES) {
                let n = (c_n - c0).min(LANES);
                // k[i][l]: element i of kernel (o, c0 + l); zero past the end.
                let k: [[f64; LANES]; 9] = std::array::from_fn(|i| {
                    std::array::from_fn(|l| {
                        if l < n {
                            w[(o * c_n + c0 + l) * 9 + i] as f64
                        } else {
                            0.0
                        }
                    })
                });
                // Columns of G g (6 rows x 3 columns), then G along each row.
                let cols: [[[f64; LANES]; 6]; 3] =
                    std::array::from_fn(|j| g_column(k[j], k[3 + j], k[6 + j]));
                for i in 0..6 {
                    let row = g_column(cols[0][i], cols[1][i], cols[2][i]);
                    for (j, v) in row.into_iter().enumerate() {
                        let dst = &mut out[(i * 6 + j) * c_n + c0..][..n];
                        dst.iter_mut().zip(v).for_each(|(d, v)| *d = v as f32);
                    }
                }
            }
        });
    let mut u = crate::buffers::uninit_f32(POINTS * uo);
    u.par_chunks_mut(uo).enumerate().for_each(|(xi, blk)| {
        for (o, row) in blk.chunks_exact_mut(c_n).enumerate() {
            row.copy_from_slice(&per_out[(o * POINTS + xi) * c_n..][..c_n]);
        }
    });
    crate::buffers::recycle_f32(per_out);
    u
}

/// Input tiles of `nb` images into `v[xi][c][t]`, `t` counting tiles image
/// by image, row by row; `(ts, blk)` are the strides from [`strides`].
/// With `pro`, each input value goes through it as it is read (zero
/// padding stays zero). `level` picks the kernels' instruction set.
pub(crate) fn input_transform(
    level: u8,
    g: &ConvGeom,
    x: &[f32],
    pro: Option<Prologue>,
    nb: usize,
    v: &mut [f32],
    (ts, blk): (usize, usize),
) {
    check_input(g, (x.len(), nb), v.len(), (ts, blk));
    assert!(nb * g.c * g.h * g.w <= i32::MAX as usize);
    assert!(pro.is_none_or(|p| p.scale.len() >= g.c && p.shift.len() >= g.c));
    check_level(level);
    // SAFETY: the CPU has the level's features (checked above); reads stay
    // within the planes (masked loads and gathers) and writes within `v`, as
    // checked above. Rows of at least 8 tiles fill half the lanes or more
    // by rows; narrower images take tiles across rows and images by gathers.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        let (x, v) = (x.as_ptr(), v.as_mut_ptr());
        let tw = grid(g).1;
        if (g.h, g.w, g.pad) == (32, 32, 1) {
            at_level!(level, input_transform_32x32(g, x, pro, nb, v, ts, blk))
        } else if tw >= 8 {
            at_level!(level, input_transform(g, x, pro, nb, v, ts, blk))
        } else if (g.h, g.w, g.pad) == (16, 16, 1) {
            at_level!(level, input_transform_16x16(g, x, pro, nb, v, ts, blk))
        } else {
            at_level!(level, input_transform_gather(g, x, pro, nb, v, ts, blk))
        }
    };
}

/// `y = A^T M A` then the epilogue (bias, residual `res` laid out like `y`,
/// ReLU) for `nb` images, with the kernels of `level`.
fn output_transform(
    level: u8,
    g: &ConvGeom,
    m: &[f32],
    (ts, blk): (usize, usize),
    nb: usize,
    (ep, res): (Epilogue, Option<&[f32]>),
    y: &mut [f32],
) {
    check_output(g, m.len(), (ts, blk), (nb, &ep, res), y.len());
    check_level(level);
    // SAFETY: as in `input_transform`.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        let res = res.map(|r| r.as_ptr());
        let (th, tw) = grid(g);
        let whole = g.ho == 4 * th && g.wo == 4 * tw;
        let (m, y) = (m.as_ptr(), y.as_mut_ptr());
        if whole && (tw % 4 == 0 || tw <= 2) {
            at_level!(
                level,
                output_transform_packed(g, m, ts, blk, nb, ep.bias, res, ep.relu, y)
            )
        } else if tw >= 8 {
            at_level!(
                level,
                output_transform(g, m, ts, blk, nb, ep.bias, res, ep.relu, y)
            )
        } else {
            at_level!(
                level,
                output_transform_scatter(g, m, ts, blk, nb, ep.bias, res, ep.relu, y)
            )
        }
    };
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod x86 {
    crate::cpu::vec16::kernels_at_each_level!(pub(crate), "winograd_kernels.rs");

    /// Column `j` of a tile of vectors, read by index (mapping the tile
    /// would copy all of it, through the stack, for every column).
    #[inline(always)]
    pub(crate) fn column<V: Copy, const R: usize>(r: &[[V; 6]; R], j: usize) -> [V; R] {
        std::array::from_fn(|i| r[i][j])
    }

    /// Row `i` of a tile of vectors kept as six columns of four.
    #[inline(always)]
    pub(crate) fn tile_row<V: Copy>(cols: &[[V; 4]; 6], i: usize) -> [V; 6] {
        [
            cols[0][i], cols[1][i], cols[2][i], cols[3][i], cols[4][i], cols[5][i],
        ]
    }
}

/// `y = conv(x, w)` then `ep` for a geometry where [`applies`] holds:
/// transform the weights once, then per group of images transform the input
/// tiles, run one GEMM per transform point and transform the products back.
pub fn forward(g: &ConvGeom, x: &[f32], w: &[f32], ep: Epilogue, y: &mut [f32]) {
    forward_at(level(), g, x, w, ep, y)
}

/// [`forward`] with the kernels of `level` ([`AVX2`] or [`AVX512`], which
/// this CPU must have).
fn forward_at(lvl: u8, g: &ConvGeom, x: &[f32], w: &[f32], ep: Epilogue, y: &mut [f32]) {
    forward_groups(lvl, g, (x, None), w, ep, y, |_, _| ());
}

/// [`forward`] of `pro(x)` (the prologue applied as the input is read),
/// also returning each image group's per-channel [`Moments`] of the output,
/// taken while the group's output is still in cache.
pub fn forward_moments(
    g: &ConvGeom,
    (x, pro): (&[f32], Option<Prologue>),
    w: &[f32],
    ep: Epilogue,
    y: &mut [f32],
) -> Vec<Vec<Moments>> {
    let out_size = g.o * g.p();
    forward_groups(level(), g, (x, pro), w, ep, y, |_, y_grp| {
        let bn = BnGeom {
            n: y_grp.len() / out_size,
            c: g.o,
            hw: g.p(),
        };
        group_moments(bn, y_grp)
    })
}

/// Runs the convolution group by group; `after(first image, group output)`
/// runs on each group's output as soon as it is written.
fn forward_groups<R: Send>(
    lvl: u8,
    g: &ConvGeom,
    (x, pro): (&[f32], Option<Prologue>),
    w: &[f32],
    ep: Epilogue,
    y: &mut [f32],
    after: impl Fn(usize, &[f32]) -> R + Sync,
) -> Vec<R> {
    let nb = images_per_group(g);
    let u = weight_transform(g, w);
    let (in_size, out_size) = (g.c * g.h * g.w, g.o * g.p());
    let stats = y
        .par_chunks_mut(nb * out_size)
        .enumerate()
        .map(|(gi, y_grp)| {
            let imgs = y_grp.len() / out_size;
            let x_grp = &x[gi * nb * in_size..][..imgs * in_size];
            let mut bufs = GroupBuffers::new(group_buffer_lens(g, imgs));
            let res = ep.residual_at(gi * nb * out_size, y_grp.len());
            forward_group(lvl, g, (x_grp, pro), &u, (ep, res), y_grp, &mut bufs);
            after(gi * nb, y_grp)
        })
        .collect();
    crate::buffers::recycle_f32(u);
    stats
}

/// Scratch for one image group: transformed input tiles `v` and products `m`.
pub(crate) struct GroupBuffers {
    pub v: Scratch,
    pub m: Scratch,
}

impl GroupBuffers {
    pub fn new((v_len, m_len): (usize, usize)) -> GroupBuffers {
        GroupBuffers {
            v: Scratch::uninit(v_len),
            m: Scratch::uninit(m_len),
        }
    }
}

/// Lengths of the scratch `(v, m)` that [`forward_group`] needs for `imgs`
/// images.
pub(crate) fn group_buffer_lens(g: &ConvGeom, imgs: usize) -> (usize, usize) {
    let t_all = imgs * grid(g).0 * grid(g).1;
    (
        POINTS * strides(t_all, g.c).1,
        POINTS * strides(t_all, g.o).1,
    )
}

/// One image group of [`forward_groups`]: `y_grp = conv(pro(x_grp))` with the
/// transformed weights `u`, then the epilogue `ep` with `res`, the group's
/// part of its residual. `lvl` picks the kernels' instruction set.
pub(crate) fn forward_group(
    lvl: u8,
    g: &ConvGeom,
    (x_grp, pro): (&[f32], Option<Prologue>),
    u: &[f32],
    (ep, res): (Epilogue, Option<&[f32]>),
    y_grp: &mut [f32],
    bufs: &mut GroupBuffers,
) {
    let (th, tw) = grid(g);
    let imgs = y_grp.len() / (g.o * g.p());
    let t_all = imgs * th * tw;
    let (sv, sm) = (strides(t_all, g.c), strides(t_all, g.o));
    let (v, m) = (&mut bufs.v[..POINTS * sv.1], &mut bufs.m[..POINTS * sm.1]);
    input_transform(lvl, g, x_grp, pro, imgs, v, sv);
    for xi in 0..POINTS {
        let (u_xi, v_xi) = (
            &u[xi * g.o * g.c..][..g.o * g.c],
            &v[xi * sv.1..][..g.c * sv.0],
        );
        let m_xi = &mut m[xi * sm.1..][..g.o * sm.0];
        let ok = if lvl >= AVX512 {
            matmul_nn_ld(g.o, t_all, g.c, u_xi, v_xi, sv.0, m_xi, sm.0)
        } else {
            gemm256::matmul_nn_acc(g.o, t_all, g.c, u_xi, g.c, v_xi, sv.0, m_xi, sm.0, false)
        };
        assert!(ok, "the Winograd path needs the GEMM kernel of its level");
    }
    output_transform(lvl, g, m, sm, imgs, (ep, res), y_grp);
}

#[cfg(test)]
mod tests {
    use super::super::testing::{data, geom, on_one_thread, require_avx512};
    use super::*;

    /// Direct convolution plus bias, residual and ReLU in f64.
    fn reference(
        g: &ConvGeom,
        x: &[f32],
        w: &[f32],
        b: &[f32],
        res: &[f32],
        relu: bool,
    ) -> Vec<f64> {
        let mut y = vec![0f64; g.n * g.o * g.p()];
        for n in 0..g.n {
            for o in 0..g.o {
                for oy in 0..g.ho {
                    for ox in 0..g.wo {
                        let mut acc = b[o] as f64;
                        for c in 0..g.c {
                            for i in 0..3 {
                                for j in 0..3 {
                                    let iy = (oy + i) as isize - g.pad as isize;
                                    let ix = (ox + j) as isize - g.pad as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    acc += x
                                        [((n * g.c + c) * g.h + iy as usize) * g.w + ix as usize]
                                        as f64
                                        * w[((o * g.c + c) * 3 + i) * 3 + j] as f64;
                                }
                            }
                        }
                        let at = ((n * g.o + o) * g.ho + oy) * g.wo + ox;
                        acc += res[at] as f64;
                        y[at] = if relu { acc.max(0.0) } else { acc };
                    }
                }
            }
        }
        y
    }

    #[test]
    #[cfg_attr(
        not(build_cpu_avx512),
        ignore = "needs AVX-512 (F and VL), which this CPU lacks"
    )]
    fn avx512_matches_direct_convolution() {
        require_avx512();
        matches_direct_convolution(AVX512);
    }

    /// The AVX2 kernels (run wherever the CPU has AVX2, whatever the level
    /// the other kernels dispatch to).
    #[test]
    fn avx2_kernels_match_direct_convolution() {
        if !super::super::testing::cpu_has_avx2() {
            return;
        }
        matches_direct_convolution(AVX2);
    }

    /// [`forward_at`] with the kernels of `lvl` against [`reference`], and
    /// the same on one thread.
    fn matches_direct_convolution(lvl: u8) {
        // (n, c, o, h, w, pad): odd sizes, paddings 0 to 2, image counts that
        // leave a short last group, rows wider than 16 tiles.
        for (n, c, o, h, w, pad) in [
            (3, 8, 9, 7, 6, 1),
            (2, 16, 16, 8, 8, 1),
            (5, 9, 8, 5, 9, 0),
            (1, 8, 12, 4, 3, 2),
            (70, 8, 8, 4, 4, 1),
            (2, 8, 10, 5, 71, 1),
            (7, 16, 16, 13, 11, 2),
            (9, 32, 32, 16, 16, 1),
            (3, 64, 64, 8, 8, 1),
            (5, 16, 16, 32, 32, 1),
            (3, 12, 8, 11, 67, 0),
            (3, 8, 8, 9, 32, 1),
            (2, 8, 9, 10, 32, 0),
            (2, 8, 8, 13, 30, 2),
        ] {
            let g = geom(n, c, o, h, w, 3, 1, pad);
            assert!(fits(&g));
            let (x, wt, b) = (data(n * c * h * w, 1), data(o * c * 9, 2), data(o, 3));
            let res = data(n * o * g.p(), 4);
            for (with_res, relu) in [(false, false), (true, true)] {
                let zeros = vec![0f32; res.len()];
                let r_in = if with_res { &res } else { &zeros };
                let ep = Epilogue {
                    bias: Some(&b),
                    residual: with_res.then_some(&res[..]),
                    relu,
                };
                let mut y = vec![f32::NAN; n * o * g.p()];
                forward_at(lvl, &g, &x, &wt, ep, &mut y);
                let r = reference(&g, &x, &wt, &b, r_in, relu);
                let scale = r.iter().fold(1f64, |m, v| m.max(v.abs()));
                let mut worst = 0f64;
                for (i, (a, e)) in y.iter().zip(&r).enumerate() {
                    let err = (*a as f64 - e).abs();
                    worst = worst.max(err / scale);
                    assert!(
                        err < 1e-5 * scale,
                        "{a} vs {e} at {i} ({n} {c} {o} {h} {w} {pad})"
                    );
                }
                let what = format!("{n} {c} {o} {h} {w} {pad}");
                assert!(worst < 1e-5, "{what}: {worst}");
                let one = on_one_thread(|| {
                    let mut y1 = vec![f32::NAN; y.len()];
                    forward_at(lvl, &g, &x, &wt, ep, &mut y1);
                    y1
                });
                assert_eq!(one, y, "thread count changed the result ({what})");
            }
        }
    }
}
