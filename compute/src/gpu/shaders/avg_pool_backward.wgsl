// Average pooling's backward as a gather: each input element adds, in
// output order, dy / k^2 of the outputs whose window covers it.
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;
@group(0) @binding(2) var<storage, read> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    let hw = p.h * p.w;
    if (i >= p.planes * hw) {
        return;
    }
    let base = (i / hw) * p.ho * p.wo;
    let ys = covering((i % hw) / p.w, p.ho);
    let xs = covering(i % p.w, p.wo);
    let inv = bitcast<f32>(p.inv);
    var s = 0.0;
    for (var oy = ys.x; oy < ys.y; oy++) {
        for (var ox = xs.x; ox < xs.y; ox++) {
            s += dy[base + oy * p.wo + ox] * inv;
        }
    }
    dx[i] = s;
}
