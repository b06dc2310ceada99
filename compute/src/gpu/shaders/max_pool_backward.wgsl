// Max pooling's backward as a gather: each input element adds, in output
// order, the gradients of the covering outputs whose index names it (the
// CPU's scatter order, so the sums agree bit for bit).
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<storage, read> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    let hw = p.h * p.w;
    if (i >= p.planes * hw) {
        return;
    }
    let pix = i % hw;
    let pos = i32(pix);
    let base = (i / hw) * p.ho * p.wo;
    let ys = covering(pix / p.w, p.ho);
    let xs = covering(pix % p.w, p.wo);
    var s = 0.0;
    for (var oy = ys.x; oy < ys.y; oy++) {
        for (var ox = xs.x; ox < xs.y; ox++) {
            let o = base + oy * p.wo + ox;
            if (idx[o] == pos) {
                s += dy[o];
            }
        }
    }
    dx[i] = s;
}
