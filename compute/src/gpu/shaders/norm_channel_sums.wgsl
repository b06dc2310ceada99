// Two sums over one channel of a [N, C, HW] tensor, by one workgroup of 256:
// strided partial sums, then a fixed-order tree reduction (deterministic).
// The shader composed with this one defines `fn terms(at: u32) -> vec2<f32>`
// (the two terms of element `at`) and `p: Params` with fields n, c, hw.

var<workgroup> s1: array<f32, 256>;
var<workgroup> s2: array<f32, 256>;

// The channel's two sums; valid in invocation 0 only.
fn channel_sums(c: u32, lid: u32) -> vec2<f32> {
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
        let t = terms((n * p.c + c) * p.hw + j);
        a += t.x;
        b += t.y;
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
    return vec2<f32>(s1[0], s2[0]);
}
