// Sums along a dimension of a shape split into (outer, size, inner): lane
// (o, i) holds x[(o * size + s) * inner + i] for s < size.
const WG: u32 = 256u;
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
// n: lanes (sums; outer for sum_columns), output elements (expand_dim) or elements (sum_all).
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

// Columns (inner >= 32): a workgroup sums 32 neighbouring lanes of one
// outer index, 8 rows of threads striding along size, so each row of
// threads reads 32 consecutive floats; then a tree over the 8 rows.
const TILE_X: u32 = 32u;
const TILE_Y: u32 = 8u;

@compute @workgroup_size(TILE_X, TILE_Y)
fn sum_columns(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_id) lid: vec3<u32>) {
    let tile = wid.x + wid.y * nwg.x;
    let tiles_per_outer = (p.inner + TILE_X - 1u) / TILE_X;
    if (tile >= p.n * tiles_per_outer) { return; }
    let o = tile / tiles_per_outer;
    let i = (tile % tiles_per_outer) * TILE_X + lid.x;
    var acc = 0.0;
    if (i < p.inner) {
        for (var s = lid.y; s < p.size; s += TILE_Y) { acc += x[(o * p.size + s) * p.inner + i]; }
    }
    let t = lid.y * TILE_X + lid.x;
    tree[t] = acc;
    workgroupBarrier();
    for (var h = TILE_Y / 2u; h > 0u; h >>= 1u) {
        if (lid.y < h) { tree[t] += tree[t + h * TILE_X]; }
        workgroupBarrier();
    }
    if (lid.y == 0u && i < p.inner) { out[o * p.inner + i] = tree[lid.x] * p.scale; }
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
