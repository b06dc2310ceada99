// dst[c] = sum over o < outer, i < inner of src[(o * channels + c) * inner + i]:
// bias gradients (per output channel) and the sum of a GEMM's K splits.
// One workgroup per channel; each thread sums a fixed strided subset, then a
// tree in workgroup memory, so the order never depends on scheduling.
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
struct Params { outer: u32, channels: u32, inner: u32 }
@group(0) @binding(2) var<storage, read> p: Params;

var<workgroup> part: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let c = wg.x + wg.y * nwg.x;
    if (c >= p.channels) {
        return;
    }
    var s = 0.0;
    for (var j = li; j < p.outer * p.inner; j += 256u) {
        let o = j / p.inner;
        s += src[(o * p.channels + c) * p.inner + j % p.inner];
    }
    part[li] = s;
    for (var half = 128u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if (li < half) {
            part[li] += part[li + half];
        }
    }
    if (li == 0u) {
        dst[c] = part[0];
    }
}
