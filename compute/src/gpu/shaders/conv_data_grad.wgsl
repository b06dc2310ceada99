// Data gradient as a GEMM: dx[img, c, iy, ix] = sum over (o, ky, kx) of
// w[o, c, ky, kx] dy[img, o, oy, ox] where iy = oy * stride + ky - pad (and
// likewise x); taps that no output reaches read zero (M = C,
// N = images * H * W, K = O * kh * kw). With the acc flag, dx_acc is added.
@group(0) @binding(0) var<storage, read> wt: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> acc_in: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<storage, read> p: Params;

fn load_a(c: u32, k: u32) -> f32 {
    let taps = p.kh * p.kw;
    return wt[((k / taps) * p.c + c) * taps + k % taps];
}

// The output coordinate whose tap `kt` reads input coordinate `i`, or -1.
fn source(i: u32, kt: u32, size: u32) -> i32 {
    let t = i32(i + p.pad) - i32(kt);
    if (t < 0 || u32(t) % p.stride != 0u || u32(t) / p.stride >= size) {
        return -1;
    }
    return t / i32(p.stride);
}

fn load_b(k: u32, col: u32) -> f32 {
    let taps = p.kh * p.kw;
    let hw = p.h * p.w;
    let img = col / hw;
    let o = k / taps;
    let oy = source((col % hw) / p.w, (k % taps) / p.kw, p.ho);
    let ox = source(col % p.w, k % p.kw, p.wo);
    if (oy < 0 || ox < 0) {
        return 0.0;
    }
    return dy[((img * p.o + o) * p.ho + u32(oy)) * p.wo + u32(ox)];
}

fn store(c: u32, col: u32, z: u32, v: f32) {
    let hw = p.h * p.w;
    let i = ((col / hw) * p.c + c) * hw + col % hw;
    var r = v;
    if ((p.flags & HAS_ACC) != 0u) {
        r += acc_in[i];
    }
    dx[i] = r;
}
