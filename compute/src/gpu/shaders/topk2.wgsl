// The two largest values of each row and their columns, one thread per
// row, scanning in the cpu's order so ties resolve the same way (the first
// column wins; NaN never compares greater).
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> vals: array<f32>;
@group(0) @binding(2) var<storage, read_write> cols: array<i32>;
struct Params { rows: u32, cols: u32 }
@group(0) @binding(3) var<storage, read> p: Params;

const NONE: u32 = 0xffffffffu;

@compute @workgroup_size(256)
fn topk2(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 256u;
    if (r >= p.rows) { return; }
    let base = r * p.cols;
    var i1 = 0u;
    var i2 = NONE;
    for (var c = 1u; c < p.cols; c++) {
        let v = x[base + c];
        if (v > x[base + i1]) {
            i2 = i1;
            i1 = c;
        } else if (i2 == NONE || v > x[base + i2]) {
            i2 = c;
        }
    }
    vals[2u * r] = x[base + i1];
    vals[2u * r + 1u] = x[base + i2];
    cols[2u * r] = i32(i1);
    cols[2u * r + 1u] = i32(i2);
}
