// out[i] = f(x[i]) for the one-input elementwise ops, one entry point each.
// Parameters: n, then two f32 words (affine's scale and shift).
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
struct Params { n: u32, s: f32, t: f32 }
@group(0) @binding(2) var<storage, read> p: Params;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

@compute @workgroup_size(256)
fn affine(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < p.n) { out[i] = p.s * x[i] + p.t; }
}

@compute @workgroup_size(256)
fn relu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < p.n) { out[i] = max(x[i], 0.0); }
}

@compute @workgroup_size(256)
fn log_(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < p.n) { out[i] = log(x[i]); }
}

@compute @workgroup_size(256)
fn sqrt_(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < p.n) { out[i] = sqrt(x[i]); }
}

@compute @workgroup_size(256)
fn recip(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < p.n) { out[i] = 1.0 / x[i]; }
}

// The standard normal quantile in f32: Wichura's AS 241 PPND7, the variant
// made for single precision (about 1e-7 relative). Special values are
// decided on the bits, since a shader compiler may assume no NaN or inf:
// -inf at 0 (and -0), inf at 1, NaN outside [0, 1] and for NaN.
fn ndtri(v: f32) -> f32 {
    let bits = bitcast<u32>(v);
    if (bits > 0x3f800000u && bits != 0x80000000u) {
        return bitcast<f32>(0x7fc00000u | bits);
    }
    if (v == 0.0 || v == 1.0) {
        return bitcast<f32>(select(0xff800000u, 0x7f800000u, v == 1.0));
    }
    let q = v - 0.5;
    if (abs(q) <= 0.425) {
        let r = 0.180625 - q * q;
        return q * (((59.109374720 * r + 159.29113202) * r + 50.434271938) * r + 3.3871327179)
            / (((67.187563600 * r + 78.757757664) * r + 17.895169469) * r + 1.0);
    }
    // The tail from the smaller of p and 1 - p (both exact in f32 here).
    var r = sqrt(-log_subnormal(select(1.0 - v, v, q < 0.0)));
    var z: f32;
    if (r <= 5.0) {
        r = r - 1.6;
        z = (((0.17023821103 * r + 1.3067284816) * r + 2.7568153900) * r + 1.4234372777)
            / ((0.12021132975 * r + 0.73700164250) * r + 1.0);
    } else {
        r = r - 5.0;
        z = (((0.017337203997 * r + 0.42868294337) * r + 3.0812263860) * r + 6.6579051150)
            / ((0.012258202635 * r + 0.24197894225) * r + 1.0);
    }
    return select(z, -z, q < 0.0);
}

// log(t) for t > 0, subnormal t included: a gpu may flush those to zero
// or lose their accuracy, so they go in as their integer bits
// (t = bits * 2^-149, and 149 ln 2 = 103.27893).
fn log_subnormal(t: f32) -> f32 {
    let bits = bitcast<u32>(t);
    if (bits < 0x00800000u) {
        return log(f32(bits)) - 103.27892990343184;
    }
    return log(t);
}

@compute @workgroup_size(256)
fn ndtri_(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < p.n) { out[i] = ndtri(x[i]); }
}
