// Weight gradient as a GEMM: dw[o, kc] = sum over (img, pix) of
// dy[img, o, pix] col(x)[kc, (img, pix)] (M = O, N = C * kh * kw,
// K = images * Ho * Wo), each K split writing its own partial [O, N] block.
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;
@group(0) @binding(3) var<storage, read> p: Params;

fn load_a(o: u32, j: u32) -> f32 {
    let pix = p.ho * p.wo;
    return dy[((j / pix) * p.o + o) * pix + j % pix];
}

fn load_b(j: u32, kc: u32) -> f32 {
    let i = x_index(kc, j);
    if (i < 0) {
        return 0.0;
    }
    return x[i];
}

fn store(o: u32, kc: u32, z: u32, v: f32) {
    part[(z * p.m + o) * p.n + kc] = v;
}
