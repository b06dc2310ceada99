// Geometry shared by the convolution GEMMs (implicit: no im2col buffer).
// The leading m, n, k, kchunk are the GEMM's; the rest the convolution's.
struct Params {
    m: u32, n: u32, k: u32, kchunk: u32,
    c: u32, h: u32, w: u32, o: u32,
    kh: u32, kw: u32, stride: u32, pad: u32,
    ho: u32, wo: u32, flags: u32,
}

// Flag bits: a bias, the prologue, a gradient to add (dx_acc).
const HAS_BIAS: u32 = 1u;
const HAS_PROLOGUE: u32 = 2u;
const HAS_ACC: u32 = 4u;

// Index in x [N, C, H, W] of im2col row `kc` (c, ky, kx) and column `col`
// (image, oy, ox), or -1 in the padding.
fn x_index(kc: u32, col: u32) -> i32 {
    let taps = p.kh * p.kw;
    let pix = p.ho * p.wo;
    let img = col / pix;
    let oy = (col % pix) / p.wo;
    let ox = col % p.wo;
    let c = kc / taps;
    let ky = (kc % taps) / p.kw;
    let kx = kc % p.kw;
    let iy = i32(oy * p.stride + ky) - i32(p.pad);
    let ix = i32(ox * p.stride + kx) - i32(p.pad);
    if (iy < 0 || ix < 0 || iy >= i32(p.h) || ix >= i32(p.w)) {
        return -1;
    }
    return i32(((img * p.c + c) * p.h + u32(iy)) * p.w + u32(ix));
}
