// Forward convolution as a GEMM: y[img, o, pix] = sum_kc w[o, kc] col(x)[kc, (img, pix)]
// (M = O, N = images * Ho * Wo, K = C * kh * kw), plus an optional bias; with
// the prologue flag the input is read as max(x * scale[c] + shift[c], 0)
// (the padding stays zero).
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> wt: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> scale: array<f32>;
@group(0) @binding(4) var<storage, read> shift: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<storage, read> p: Params;

fn load_a(o: u32, kc: u32) -> f32 {
    return wt[o * p.k + kc];
}

fn load_b(kc: u32, col: u32) -> f32 {
    let i = x_index(kc, col);
    if (i < 0) {
        return 0.0;
    }
    let v = x[i];
    if ((p.flags & HAS_PROLOGUE) != 0u) {
        let c = kc / (p.kh * p.kw);
        return max(v * scale[c] + shift[c], 0.0);
    }
    return v;
}

fn store(o: u32, col: u32, z: u32, v: f32) {
    let pix = p.ho * p.wo;
    var r = v;
    if ((p.flags & HAS_BIAS) != 0u) {
        r += bias[o];
    }
    y[((col / pix) * p.o + o) * pix + col % pix] = r;
}
