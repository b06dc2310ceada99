// Geometry shared by the pooling kernels (square window, no padding); one
// thread per output element (forward) or input element (backward).
struct Params {
    planes: u32, h: u32, w: u32, k: u32, stride: u32, ho: u32, wo: u32,
    // 1 / (k * k), as f32 bits (average pooling).
    inv: u32,
}

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// The outputs along one axis whose window covers input coordinate `i`:
// [first, end).
fn covering(i: u32, outs: u32) -> vec2<u32> {
    var first = 0u;
    if (i + 1u > p.k) {
        first = (i + 1u - p.k + p.stride - 1u) / p.stride;
    }
    return vec2<u32>(first, min(i / p.stride + 1u, outs));
}
