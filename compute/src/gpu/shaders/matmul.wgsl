// Strided matrices for the tiled GEMM (linear layers): A and B are read
// through row and column strides, so a transpose is a choice of strides.
// C is row-major, one [M, N] block per split; `bias` (one value per column)
// is added where the flag is set.
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
struct Params {
    m: u32, n: u32, k: u32, kchunk: u32,
    a_rs: u32, a_cs: u32, b_rs: u32, b_cs: u32,
    has_bias: u32,
}
@group(0) @binding(4) var<storage, read> p: Params;

fn load_a(m: u32, k: u32) -> f32 {
    return a[m * p.a_rs + k * p.a_cs];
}

fn load_b(k: u32, n: u32) -> f32 {
    return b[k * p.b_rs + n * p.b_cs];
}

fn store(m: u32, n: u32, z: u32, v: f32) {
    var r = v;
    if (p.has_bias != 0u) {
        r += bias[n];
    }
    c[(z * p.m + m) * p.n + n] = r;
}
