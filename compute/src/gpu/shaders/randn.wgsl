
// out[e] = normal e of the draw starting at block `first` of stream `seed`;
// one thread per block of four.
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
struct Params { n: u32, seed_lo: u32, seed_hi: u32, first_lo: u32, first_hi: u32 }
@group(0) @binding(1) var<storage, read> p: Params;

@compute @workgroup_size(256)
fn randn(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = gid.x + gid.y * nwg.x * 256u;
    if (j >= (p.n + 3u) / 4u) {
        return;
    }
    let first = vec2<u32>(p.first_lo, p.first_hi);
    let z = normals4(vec2<u32>(p.seed_lo, p.seed_hi), block_at(first, j));
    for (var l = 0u; l < 4u; l++) {
        let e = 4u * j + l;
        if (e < p.n) {
            out[e] = z[l];
        }
    }
}
