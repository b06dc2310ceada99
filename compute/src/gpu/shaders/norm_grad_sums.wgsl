// Per channel dbeta = sum dy and dgamma = sum dy (x - mean) * invstd over
// x, dy [N, C, HW]: one workgroup per channel (norm_channel_sums.wgsl).
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> invstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(5) var<storage, read_write> dbeta: array<f32>;
struct Params { n: u32, c: u32, hw: u32 }
@group(0) @binding(6) var<storage, read> p: Params;

var<private> m: f32;

fn terms(at: u32) -> vec2<f32> {
    return vec2<f32>(dy[at], dy[at] * (x[at] - m));
}

@compute @workgroup_size(256)
fn grad_sums(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wid.x;
    m = mean[c];
    let s = channel_sums(c, lid);
    if (lid == 0u) {
        dbeta[c] = s.x;
        dgamma[c] = s.y * invstd[c];
    }
}
