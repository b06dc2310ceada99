// Max pooling: the maximum of each window and its position iy * W + ix in
// the plane (the first on ties; a NaN wins, the last one if several).
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> idx: array<i32>;
@group(0) @binding(3) var<storage, read> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = index(gid, nwg);
    let outs = p.ho * p.wo;
    if (o >= p.planes * outs) {
        return;
    }
    let base = (o / outs) * p.h * p.w;
    let first = ((o % outs) / p.wo) * p.stride * p.w + (o % p.wo) * p.stride;
    var best = x[base + first];
    var at = first;
    for (var i = 0u; i < p.k; i++) {
        for (var j = 0u; j < p.k; j++) {
            let pos = first + i * p.w + j;
            let v = x[base + pos];
            if (v > best || v != v) {
                best = v;
                at = pos;
            }
        }
    }
    y[o] = best;
    idx[o] = i32(at);
}
