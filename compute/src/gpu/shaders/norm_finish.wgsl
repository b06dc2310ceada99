// Per channel, from the batch mean and biased variance: the inverse std,
// the mean copied out, and the running statistics moved towards the
// batch's by `momentum` (the variance unbiased by `unbias`, as PyTorch's).
@group(0) @binding(0) var<storage, read> mean: array<f32>;
@group(0) @binding(1) var<storage, read> variance: array<f32>;
@group(0) @binding(2) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(4) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> invstd: array<f32>;
struct Params { c: u32, momentum: f32, eps: f32, unbias: f32 }
@group(0) @binding(6) var<storage, read> p: Params;

@compute @workgroup_size(256)
fn finish(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let c = gid.x + gid.y * nwg.x * 256u;
    if (c >= p.c) { return; }
    let m = mean[c];
    let v = variance[c];
    mean_out[c] = m;
    invstd[c] = 1.0 / sqrt(v + p.eps);
    running_mean[c] = (1.0 - p.momentum) * running_mean[c] + p.momentum * m;
    running_var[c] = (1.0 - p.momentum) * running_var[c] + p.momentum * v * p.unbias;
}
