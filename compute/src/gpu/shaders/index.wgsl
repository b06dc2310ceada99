// Row gathers, scatters, selection and its adjoint: one thread per output
// element, so every sum is formed by one thread in index order (no atomics:
// deterministic, and in the cpu's order). An index outside 0..bound gives
// NaN where it is read from and contributes nothing where it is added to
// (the host cannot check the indices without a read-back).
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
// n: output elements; width and bound: see each entry.
struct Params { n: u32, width: u32, bound: u32 }
@group(0) @binding(3) var<storage, read> p: Params;

fn element(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// A NaN built at run time (a constant one is refused by shader compilers).
fn nan(bits: u32) -> f32 {
    return bitcast<f32>(0x7fc00000u | bits);
}

// out[r, j] = src[r, idx[r, j]]; width: k (indices per row), bound: C.
@compute @workgroup_size(256)
fn gather_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = element(gid, nwg);
    if (e >= p.n) { return; }
    let c = u32(idx[e]);
    out[e] = select(nan(c), src[(e / p.width) * p.bound + c], c < p.bound);
}

// out[r, c] = sum of src[r, j] over j with idx[r, j] == c; width: k, bound: C.
@compute @workgroup_size(256)
fn scatter_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = element(gid, nwg);
    if (e >= p.n) { return; }
    let base = (e / p.bound) * p.width;
    let c = i32(e % p.bound);
    var acc = 0.0;
    for (var j = 0u; j < p.width; j++) {
        if (idx[base + j] == c) { acc += src[base + j]; }
    }
    out[e] = acc;
}

// out[j, ..] = src[idx[j], ..]; width: elements per row, bound: rows of src.
@compute @workgroup_size(256)
fn index_select(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = element(gid, nwg);
    if (e >= p.n) { return; }
    let r = u32(idx[e / p.width]);
    out[e] = select(nan(r), src[r * p.width + e % p.width], r < p.bound);
}

// out[r, ..] = sum of src[j, ..] over j with idx[j] == r; width: elements
// per row, bound: number of indices.
@compute @workgroup_size(256)
fn index_add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let e = element(gid, nwg);
    if (e >= p.n) { return; }
    let r = i32(e / p.width);
    let c = e % p.width;
    var acc = 0.0;
    for (var j = 0u; j < p.bound; j++) {
        if (idx[j] == r) { acc += src[j * p.width + c]; }
    }
    out[e] = acc;
}
