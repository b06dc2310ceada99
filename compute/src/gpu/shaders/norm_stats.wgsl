// Per-channel batch mean and biased variance of x [N, C, HW]: one
// workgroup per channel (norm_channel_sums.wgsl). Sums are shifted by the
// channel's first element so the variance does not cancel when the mean is
// large.
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> mean: array<f32>;
@group(0) @binding(2) var<storage, read_write> variance: array<f32>;
struct Params { n: u32, c: u32, hw: u32 }
@group(0) @binding(3) var<storage, read> p: Params;

var<private> shift: f32;

fn terms(at: u32) -> vec2<f32> {
    let d = x[at] - shift;
    return vec2<f32>(d, d * d);
}

@compute @workgroup_size(256)
fn stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wid.x;
    let count = p.n * p.hw;
    shift = x[select(0u, c * p.hw, count > 0u)];
    let s = channel_sums(c, lid);
    if (lid == 0u) {
        // An empty batch has no statistics: NaN, as on the cpu (the bits
        // built from `count` so that no constant NaN is folded).
        let nan = bitcast<f32>(0x7fc00000u | count);
        let cnt = f32(count);
        let m1 = s.x / cnt;
        mean[c] = select(nan, shift + m1, count > 0u);
        variance[c] = select(nan, max(s.y / cnt - m1 * m1, 0.0), count > 0u);
    }
}
