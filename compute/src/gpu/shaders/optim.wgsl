// One SGD step in place (torch.optim.SGD), as the cpu's cpu::optim::Step.
@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read_write> buf: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
struct Params {
    n: u32,
    lr: f32,
    mom: f32,
    wd: f32,
    // 1 - dampening, rounded on the host as the cpu rounds it.
    keep: f32,
    nesterov: u32,
    first: u32,
    // 1.0, unknown to the compiler: see mul.
    one: f32,
}
@group(0) @binding(3) var<storage, read> p: Params;

// x * y rounded on its own, as on the cpu (Rust never fuses a multiply and
// an add; a GPU compiler may). Should it fuse the product by one with the
// following add, fma(x * y, 1, c) still rounds x * y first.
fn mul(x: f32, y: f32) -> f32 {
    return x * y * p.one;
}

@compute @workgroup_size(256)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) {
        return;
    }
    let w = param[i];
    let d = grad[i] + mul(p.wd, w);
    if (p.mom == 0.0) {
        param[i] = w - mul(p.lr, d);
        return;
    }
    var v = d;
    if (p.first == 0u) {
        v = mul(p.mom, buf[i]) + mul(p.keep, d);
    }
    buf[i] = v;
    var step = v;
    if (p.nesterov != 0u) {
        step = d + mul(p.mom, v);
    }
    param[i] = w - mul(p.lr, step);
}
