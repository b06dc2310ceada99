// Per-class statistics of logits a [rows, cols]: first a thread per row, then
// a workgroup per class reducing over the rows in a fixed order (a tree in
// workgroup memory, no float atomics), so results do not vary between runs.
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read_write> b: array<f32>;
struct Params { rows: u32, cols: u32, beta: f32 }
@group(0) @binding(2) var<storage, read> p: Params;

var<workgroup> count: array<u32, 256>;
var<workgroup> part: array<f32, 256>;
var<workgroup> part_sq: array<f32, 256>;

fn row_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

fn class_index(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wg.x + wg.y * nwg.x;
}

// b[r] = the first maximum's column in row r, as f32 (exact below 2^24).
@compute @workgroup_size(256)
fn argmax_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_index(gid, nwg);
    if (r >= p.rows) {
        return;
    }
    let row = r * p.cols;
    var best = 0u;
    for (var c = 1u; c < p.cols; c++) {
        if (a[row + c] > a[row + best]) {
            best = c;
        }
    }
    b[r] = f32(best);
}

// b[c] = how many of the rows' argmaxes (a [rows]) are c.
@compute @workgroup_size(256)
fn votes(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let c = class_index(wg, nwg);
    if (c >= p.cols) {
        return;
    }
    var n = 0u;
    for (var r = t; r < p.rows; r += 256u) {
        n += u32(a[r] == f32(c));
    }
    count[t] = n;
    for (var h = 128u; h > 0u; h >>= 1u) {
        workgroupBarrier();
        if (t < h) {
            count[t] += count[t + h];
        }
    }
    if (t == 0u) {
        b[c] = f32(count[0]);
    }
}

// b[row r] = softmax(beta * a[row r]), as the cpu: max, exp, sum, divide.
@compute @workgroup_size(256)
fn softmax_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_index(gid, nwg);
    if (r >= p.rows) {
        return;
    }
    let row = r * p.cols;
    var m = p.beta * a[row];
    for (var c = 1u; c < p.cols; c++) {
        m = max(m, p.beta * a[row + c]);
    }
    var total = 0.0;
    for (var c = 0u; c < p.cols; c++) {
        let e = exp(p.beta * a[row + c] - m);
        b[row + c] = e;
        total += e;
    }
    for (var c = 0u; c < p.cols; c++) {
        b[row + c] = b[row + c] / total;
    }
}

// b[c] = sum over rows of a[r, c], b[cols + c] = sum of squares.
@compute @workgroup_size(256)
fn class_sums(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let c = class_index(wg, nwg);
    if (c >= p.cols) {
        return;
    }
    var s = 0.0;
    var sq = 0.0;
    for (var r = t; r < p.rows; r += 256u) {
        let q = a[r * p.cols + c];
        s += q;
        sq += q * q;
    }
    part[t] = s;
    part_sq[t] = sq;
    for (var h = 128u; h > 0u; h >>= 1u) {
        workgroupBarrier();
        if (t < h) {
            part[t] += part[t + h];
            part_sq[t] += part_sq[t + h];
        }
    }
    if (t == 0u) {
        b[c] = part[0];
        b[p.cols + c] = part_sq[0];
    }
}
