// Average pooling: each window's sum, row by row as the CPU sums it, times 1 / k^2.
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = index(gid, nwg);
    let outs = p.ho * p.wo;
    if (o >= p.planes * outs) {
        return;
    }
    let first = (o / outs) * p.h * p.w + ((o % outs) / p.wo) * p.stride * p.w + (o % p.wo) * p.stride;
    var s = 0.0;
    for (var i = 0u; i < p.k; i++) {
        var row = 0.0;
        for (var j = 0u; j < p.k; j++) {
            row += x[first + i * p.w + j];
        }
        s += row;
    }
    y[o] = s * bitcast<f32>(p.inv);
}
