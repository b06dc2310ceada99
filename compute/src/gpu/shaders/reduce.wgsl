// Sums along a dimension of a shape split into (outer, size, inner): lane
// (o, i) holds x[(o * size + s) * inner + i] for s < size.
const WG: u32 = 256u;
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
// n: lanes (sums), output elements (expand_dim) or elements (sum_all).
struct Params { n: u32, size: u32, inner: u32, scale: f32 }
@group(0) @binding(2) var<storage, read> p: Params;

fn lane_base(lane: u32) -> u32 {
    return (lane / p.inner) * p.size * p.inner + lane % p.inner;
}

// One workgroup per lane: strided partial sums, then a tree.
@compute @workgroup_size(WG)
fn sum_lanes(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) tid: u32) {
    let lane = wid.x + wid.y * nwg.x;
    if (lane >= p.n) { return; }
    let base = lane_base(lane);
    var acc = 0.0;
    for (var s = tid; s < p.size; s += WG) { acc += x[base + s * p.inner]; }
    let total = tree_sum(tid, acc);
    if (tid == 0u) { out[lane] = total * p.scale; }
}

// One thread per lane, in order along the lane (short lanes, where a
// workgroup each would leave most threads idle): the cpu's summation order.
@compute @workgroup_size(WG)
fn sum_short_lanes(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let lane = gid.x + gid.y * nwg.x * WG;
    if (lane >= p.n) { return; }
    let base = lane_base(lane);
    var acc = 0.0;
    for (var s = 0u; s < p.size; s++) { acc += x[base + s * p.inner]; }
    out[lane] = acc * p.scale;
}

// expand_dim: out[(o * size + s) * inner + i] = scale * x[o * inner + i].
@compute @workgroup_size(WG)
fn expand(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = gid.x + gid.y * nwg.x * WG;
    if (e >= p.n) { return; }
    let o = e / (p.size * p.inner);
    out[e] = x[o * p.inner + e % p.inner] * p.scale;
}

// sum_all, one pass: workgroup w sums a grid-strided share of the n
// elements into out[w] (a 1-D grid).
@compute @workgroup_size(WG)
fn sum_all(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) tid: u32) {
    var acc = 0.0;
    for (var i = wid.x * WG + tid; i < p.n; i += nwg.x * WG) { acc += x[i]; }
    let total = tree_sum(tid, acc);
    if (tid == 0u) { out[wid.x] = total; }
}
