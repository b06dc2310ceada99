// Gradients of softmax and log-softmax of scale * x along lanes of a shape
// split into (outer, size, inner), one workgroup per lane. y is the forward
// output, dy the upstream gradient.
const WG: u32 = 64u;
@group(0) @binding(0) var<storage, read> y: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
struct Params { lanes: u32, size: u32, inner: u32, scale: f32 }
@group(0) @binding(3) var<storage, read> p: Params;

fn at(base: u32, s: u32) -> u32 {
    return base + s * p.inner;
}

// scale * y * (dy - sum(y * dy))
@compute @workgroup_size(WG)
fn softmax_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) tid: u32) {
    let lane = wid.x + wid.y * nwg.x;
    if (lane >= p.lanes) { return; }
    let base = (lane / p.inner) * p.size * p.inner + lane % p.inner;
    var acc = 0.0;
    for (var s = tid; s < p.size; s += WG) { acc += y[at(base, s)] * dy[at(base, s)]; }
    let dot = tree_sum(tid, acc);
    for (var s = tid; s < p.size; s += WG) {
        let k = at(base, s);
        out[k] = p.scale * y[k] * (dy[k] - dot);
    }
}

// scale * (dy - exp(y) * sum(dy))
@compute @workgroup_size(WG)
fn log_softmax_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) tid: u32) {
    let lane = wid.x + wid.y * nwg.x;
    if (lane >= p.lanes) { return; }
    let base = (lane / p.inner) * p.size * p.inner + lane % p.inner;
    var acc = 0.0;
    for (var s = tid; s < p.size; s += WG) { acc += dy[at(base, s)]; }
    let total = tree_sum(tid, acc);
    for (var s = tid; s < p.size; s += WG) {
        let k = at(base, s);
        out[k] = p.scale * (dy[k] - exp(y[k]) * total);
    }
}
