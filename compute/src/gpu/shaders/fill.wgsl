// out[i] = value (full).
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
struct Params { n: u32, value: f32 }
@group(0) @binding(1) var<storage, read> p: Params;

@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i < p.n) { out[i] = p.value; }
}
