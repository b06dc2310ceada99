// Per-channel batch mean and biased variance of x [N, C, HW]: one
// workgroup per channel, a fixed-order tree reduction (deterministic).
// Sums are shifted by the channel's first element so the variance does
// not cancel when the mean is large.
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> mean: array<f32>;
@group(0) @binding(2) var<storage, read_write> variance: array<f32>;
struct Params { n: u32, c: u32, hw: u32 }
@group(0) @binding(3) var<storage, read> p: Params;

var<workgroup> s1: array<f32, 256>;
var<workgroup> s2: array<f32, 256>;

@compute @workgroup_size(256)
fn stats(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wid.x;
    let count = p.n * p.hw;
    let k = x[select(0u, c * p.hw, count > 0u)];
    var a = 0.0;
    var b = 0.0;
    // Element lid + 256 t of the channel is pixel j of image n; both step
    // by 256 elements without a division per element (none when hw is 0).
    let dn = 256u / max(p.hw, 1u);
    let dj = 256u % max(p.hw, 1u);
    let images = select(0u, p.n, p.hw > 0u);
    var n = lid / max(p.hw, 1u);
    var j = lid % max(p.hw, 1u);
    while (n < images) {
        let at = (n * p.c + c) * p.hw + j;
        let d = x[at] - k;
        a += d;
        b += d * d;
        j += dj;
        n += dn;
        if (j >= p.hw) {
            j -= p.hw;
            n += 1u;
        }
    }
    s1[lid] = a;
    s2[lid] = b;
    for (var stride = 128u; stride > 0u; stride >>= 1u) {
        workgroupBarrier();
        if (lid < stride) {
            s1[lid] += s1[lid + stride];
            s2[lid] += s2[lid + stride];
        }
    }
    if (lid == 0u) {
        // An empty batch has no statistics: NaN, as on the cpu (the bits
        // built from `count` so that no constant NaN is folded).
        let nan = bitcast<f32>(0x7fc00000u | count);
        let cnt = f32(count);
        let m1 = s1[0] / cnt;
        mean[c] = select(nan, k + m1, count > 0u);
        variance[c] = select(nan, max(s2[0] / cnt - m1 * m1, 0.0), count > 0u);
    }
}
