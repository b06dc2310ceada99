//! The tiled GEMM shared by the linear and convolution kernels: one WGSL
//! main loop ([`GEMM`]) completed by loaders that say how A and B are read
//! and C written (strided matrices, or convolutions without im2col buffers),
//! and by a tile shape that fits M.
//! K can be split over workgroups (`kchunk`), each split writing its own
//! partial C; [`sum_splits`] adds them in split order.

use std::sync::OnceLock;

use super::{grid, Gpu, GpuData, Kernel};

/// Output tile shapes (rows of M, columns of N), 4096 outputs each; a GEMM
/// takes the first whose rows cover M (the last for any larger M).
const TILES: [(usize, usize); 3] = [(16, 256), (32, 128), (64, 64)];

/// Workgroups a dispatch may have along one dimension.
const MAX_GROUPS: usize = 65_535;

const GEMM: &str = include_str!("shaders/gemm.wgsl");
const CHANNEL_SUM: &str = include_str!("shaders/channel_sum.wgsl");

/// A GEMM: its loaders (WGSL defining Params, load_a, load_b, store and the
/// buffers), compiled once per tile shape on first use.
pub struct Gemm {
    /// Pipeline names, one per tile shape.
    names: [&'static str; 3],
    loaders: &'static str,
    sources: [OnceLock<String>; 3],
}

impl Gemm {
    pub const fn new(names: [&'static str; 3], loaders: &'static str) -> Gemm {
        Gemm {
            names,
            loaders,
            sources: [OnceLock::new(), OnceLock::new(), OnceLock::new()],
        }
    }

    fn kernel(&'static self, tile: usize) -> Kernel {
        let (tm, tn) = TILES[tile];
        let source = self.sources[tile].get_or_init(|| {
            let shape = format!("const TM: u32 = {tm}u;\nconst TN: u32 = {tn}u;");
            format!("{shape}\n{}\n{GEMM}", self.loaders)
        });
        Kernel {
            name: self.names[tile],
            source: source.as_str(),
            entry: "main",
        }
    }
}

/// The problem size `(m, n, k)`, how K is split, and the tile shape.
#[derive(Clone, Copy)]
pub struct Dims {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub splits: usize,
    /// Index into [`TILES`].
    tile: usize,
    /// Workgroups along x before N's tiles continue on another row of y.
    max_x: usize,
}

impl Dims {
    /// One split: each output summed over all of K by one thread.
    pub fn whole(m: usize, n: usize, k: usize) -> Dims {
        let tile = TILES
            .iter()
            .position(|&(tm, _)| tm >= m)
            .unwrap_or(TILES.len() - 1);
        Dims {
            m,
            n,
            k,
            splits: 1,
            tile,
            max_x: MAX_GROUPS,
        }
    }

    /// The same GEMM with rows of at most `max_x` workgroups (what a huge N
    /// gets, at a size a test can run).
    #[cfg(test)]
    pub fn with_max_x(self, max_x: usize) -> Dims {
        Dims { max_x, ..self }
    }

    /// K split so that a long reduction over few outputs (a weight gradient
    /// over a whole batch) still fills the device: at most 256 tile-splits and
    /// at least 512 of K per split. Depends only on the shape, so the sum's
    /// order is fixed.
    pub fn split(m: usize, n: usize, k: usize) -> Dims {
        let d = Dims::whole(m, n, k);
        let (tm, tn) = TILES[d.tile];
        let tiles = m.div_ceil(tm) * n.div_ceil(tn);
        let splits = (k / 512).min(256 / tiles.max(1)).max(1);
        Dims { splits, ..d }
    }

    /// K per split, a whole number of the kernel's K-tiles.
    pub fn kchunk(&self) -> usize {
        self.k.div_ceil(self.splits).next_multiple_of(16).max(16)
    }

    /// The leading parameter words every GEMM's Params starts with.
    pub fn words(&self) -> [u32; 4] {
        [self.m, self.n, self.k, self.kchunk()].map(|v| v as u32)
    }

    /// Workgroups: tiles of N along x (in rows of at most 65,535), rows of
    /// them times tiles of M along y, splits along z (those `kchunk` reaches).
    pub fn groups(&self) -> [u32; 3] {
        let (tm, tn) = TILES[self.tile];
        let n_tiles = self.n.div_ceil(tn);
        let x = n_tiles.min(self.max_x);
        let rows = n_tiles.div_ceil(x.max(1));
        let splits = self.k.div_ceil(self.kchunk()).max(1);
        [x, rows * self.m.div_ceil(tm), splits].map(|v| v as u32)
    }

    /// Splits the dispatch writes (partial blocks of `m * n`).
    pub fn partials(&self) -> usize {
        self.groups()[2] as usize
    }
}

/// Records `gemm` over `buffers` with `extra` parameter words after the
/// leading four; nothing when C is empty.
pub fn dispatch(gpu: &Gpu, gemm: &'static Gemm, buffers: &[&GpuData], d: Dims, extra: &[u32]) {
    if d.m == 0 || d.n == 0 {
        return;
    }
    let words: Vec<u32> = d.words().iter().chain(extra).copied().collect();
    gpu.dispatch(&gemm.kernel(d.tile), buffers, &words, d.groups());
}

/// `dst[c] = sum_{o, i} src[(o * channels + c) * inner + i]` in a fixed order.
pub fn channel_sum(
    gpu: &Gpu,
    src: &GpuData,
    dst: &GpuData,
    (outer, channels, inner): (usize, usize, usize),
) {
    if channels == 0 {
        return;
    }
    let kernel = Kernel {
        name: "channel_sum",
        source: CHANNEL_SUM,
        entry: "main",
    };
    let words = [outer, channels, inner].map(|v| v as u32);
    gpu.dispatch(
        &kernel,
        &[src, dst],
        &words,
        grid(channels * super::WORKGROUP as usize),
    );
}

/// The sum of `splits` partial blocks of `len` elements, in split order.
pub fn sum_splits(gpu: &Gpu, partials: &GpuData, dst: &GpuData, splits: usize, len: usize) {
    channel_sum(gpu, partials, dst, (splits, len, 1));
}
