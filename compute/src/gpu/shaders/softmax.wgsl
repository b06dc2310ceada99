// Softmax and log-softmax of scale * x along lanes of a shape split into
// (outer, size, inner), one workgroup per lane.
const WG: u32 = 64u;
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
struct Params { lanes: u32, size: u32, inner: u32, scale: f32 }
@group(0) @binding(2) var<storage, read> p: Params;

fn at(base: u32, s: u32) -> u32 {
    return base + s * p.inner;
}

// max(scale * x) over the lane, the shift that keeps exp finite.
fn lane_max(base: u32, tid: u32) -> f32 {
    var m = -3.4028235e38;
    for (var s = tid; s < p.size; s += WG) { m = max(m, x[at(base, s)] * p.scale); }
    return tree_max(tid, m);
}

// sum(exp(scale * x - m)) over the lane.
fn lane_exp_sum(base: u32, tid: u32, m: f32) -> f32 {
    var acc = 0.0;
    for (var s = tid; s < p.size; s += WG) { acc += exp(x[at(base, s)] * p.scale - m); }
    return tree_sum(tid, acc);
}

@compute @workgroup_size(WG)
fn softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) tid: u32) {
    let lane = wid.x + wid.y * nwg.x;
    if (lane >= p.lanes) { return; }
    let base = (lane / p.inner) * p.size * p.inner + lane % p.inner;
    let m = lane_max(base, tid);
    let total = lane_exp_sum(base, tid, m);
    for (var s = tid; s < p.size; s += WG) {
        let k = at(base, s);
        out[k] = exp(x[k] * p.scale - m) / total;
    }
}

@compute @workgroup_size(WG)
fn log_softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) tid: u32) {
    let lane = wid.x + wid.y * nwg.x;
    if (lane >= p.lanes) { return; }
    let base = (lane / p.inner) * p.size * p.inner + lane % p.inner;
    let m = lane_max(base, tid);
    let lse = m + log(lane_exp_sum(base, tid, m));
    for (var s = tid; s < p.size; s += WG) {
        let k = at(base, s);
        out[k] = x[k] * p.scale - lse;
    }
}
