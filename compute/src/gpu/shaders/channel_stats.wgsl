// Batch mean and biased variance of each channel of y [N, C, P]: one
// workgroup per channel, the mean first, then the mean squared deviation
// from it (two passes, so the variance does not cancel). Each thread sums a
// fixed strided subset, then a tree in workgroup memory: a fixed order.
@group(0) @binding(0) var<storage, read> y: array<f32>;
@group(0) @binding(1) var<storage, read_write> mean: array<f32>;
@group(0) @binding(2) var<storage, read_write> var_out: array<f32>;
struct Params { n: u32, channels: u32, pix: u32 }
@group(0) @binding(3) var<storage, read> p: Params;

var<workgroup> part: array<f32, 256>;

fn at(c: u32, j: u32) -> f32 {
    return y[((j / p.pix) * p.channels + c) * p.pix + j % p.pix];
}

// The workgroup's total of `s` (every thread gets it).
fn total(li: u32, s: f32) -> f32 {
    part[li] = s;
    for (var half = 128u; half > 0u; half >>= 1u) {
        workgroupBarrier();
        if (li < half) {
            part[li] += part[li + half];
        }
    }
    workgroupBarrier();
    let t = part[0];
    workgroupBarrier();
    return t;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let c = wg.x + wg.y * nwg.x;
    if (c >= p.channels) {
        return;
    }
    let count = p.n * p.pix;
    var s = 0.0;
    for (var j = li; j < count; j += 256u) {
        s += at(c, j);
    }
    let m = total(li, s) / f32(count);
    var q = 0.0;
    for (var j = li; j < count; j += 256u) {
        let d = at(c, j) - m;
        q += d * d;
    }
    let v = total(li, q) / f32(count);
    if (li == 0u) {
        mean[c] = m;
        var_out[c] = v;
    }
}
