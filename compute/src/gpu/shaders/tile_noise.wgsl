
// Output row r (`row` elements) is x's row r / k plus sigma times the normals
// of the draw at those positions; one thread per block of four.
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
struct Params {
    n: u32,
    row: u32,
    k: u32,
    sigma: f32,
    seed_lo: u32,
    seed_hi: u32,
    first_lo: u32,
    first_hi: u32,
}
@group(0) @binding(2) var<storage, read> p: Params;

@compute @workgroup_size(256)
fn tile_noise(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = gid.x + gid.y * nwg.x * 256u;
    if (j >= (p.n + 3u) / 4u) {
        return;
    }
    let first = vec2<u32>(p.first_lo, p.first_hi);
    let z = normals4(vec2<u32>(p.seed_lo, p.seed_hi), block_at(first, j));
    for (var l = 0u; l < 4u; l++) {
        let e = 4u * j + l;
        if (e < p.n) {
            let r = e / p.row;
            out[e] = x[(r / p.k) * p.row + (e - r * p.row)] + p.sigma * z[l];
        }
    }
}
