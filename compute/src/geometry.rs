//! Shapes of convolutions and poolings, and the parts fused into a
//! convolution: shared by the cpu and gpu kernels.

/// Geometry of one convolution.
#[derive(Clone, Copy, Debug)]
pub struct ConvGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub ho: usize,
    pub wo: usize,
}

impl ConvGeom {
    pub fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }
    pub fn p(&self) -> usize {
        self.ho * self.wo
    }
    pub fn in_size(&self) -> usize {
        self.c * self.h * self.w
    }
    /// A 1x1, stride-1, unpadded convolution reads the input as its own col.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad == 0
    }
}

/// A per-input-channel `max(x * scale[c] + shift[c], 0)` applied to the
/// input as the convolution reads it: a training-mode batch norm + ReLU whose
/// output is never written out (the padding stays zero).
#[derive(Clone, Copy)]
pub struct Prologue<'a> {
    pub scale: &'a [f32],
    pub shift: &'a [f32],
}

/// What the forward does to each output element after the convolution sum:
/// `y = max(conv + bias[o] + residual, 0)`, each part optional, in that order.
#[derive(Clone, Copy, Default)]
pub struct Epilogue<'a> {
    /// One value per output channel.
    pub bias: Option<&'a [f32]>,
    /// Same layout as the output `[N, O, Ho, Wo]`.
    pub residual: Option<&'a [f32]>,
    pub relu: bool,
}

impl<'a> Epilogue<'a> {
    pub fn bias(bias: Option<&'a [f32]>) -> Self {
        Epilogue {
            bias,
            ..Default::default()
        }
    }

    /// The residual of the `len` outputs from `start` on.
    pub(crate) fn residual_at(&self, start: usize, len: usize) -> Option<&'a [f32]> {
        self.residual.map(|r| &r[start..start + len])
    }
}

/// Geometry of a square-window pooling over `planes` planes (no padding).
#[derive(Clone, Copy)]
pub struct PoolGeom {
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub k: usize,
    pub stride: usize,
    pub ho: usize,
    pub wo: usize,
}

/// Where `conv2d`'s optional inputs are: the bias's position, the position of
/// the prologue's scale (its shift follows), and whether the batch statistics
/// of the output are wanted.
#[derive(Clone, Copy)]
pub struct ConvInputs {
    pub bias: Option<usize>,
    pub prologue: Option<usize>,
    pub with_stats: bool,
}
