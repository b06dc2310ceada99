// MACER's keep mask: one thread per image.
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> top: array<i32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read_write> keep: array<f32>;
struct Params { n: u32, gamma: f32 }
@group(0) @binding(4) var<storage, read> p: Params;

// Finiteness from the exponent bits: WGSL lets implementations assume
// arithmetic never yields inf or NaN, so a comparison cannot be trusted to.
fn is_finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = gid.x + gid.y * nwg.x * 256u;
    if (b >= p.n) { return; }
    let gap = q[2u * b + 1u] - q[2u * b];
    let kept = top[2u * b] == labels[b] && is_finite(gap) && abs(gap) <= p.gamma;
    keep[b] = select(0.0, 1.0, kept);
}
