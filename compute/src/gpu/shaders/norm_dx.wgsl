// dx = k (dy - mean(dy) - xhat mean(dy xhat)), k = gamma * invstd, written
// as a dy + b x + c per channel from dbeta = sum dy and dgamma = sum dy xhat
// (the cpu's coefficients, so the two agree to rounding).
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> invstd: array<f32>;
@group(0) @binding(5) var<storage, read> dgamma: array<f32>;
@group(0) @binding(6) var<storage, read> dbeta: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
struct Params { len: u32, c: u32, hw: u32, inv_count: f32 }
@group(0) @binding(8) var<storage, read> p: Params;

@compute @workgroup_size(256)
fn dx_pass(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.len) { return; }
    let c = (i / p.hw) % p.c;
    let k = gamma[c] * invstd[c];
    let b = -k * invstd[c] * (dgamma[c] * p.inv_count);
    let off = -k * (dbeta[c] * p.inv_count) - b * mean[c];
    dx[i] = k * dy[i] + b * x[i] + off;
}
