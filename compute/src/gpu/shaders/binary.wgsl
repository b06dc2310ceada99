// out[i] = a[i] (op) b[i] for the three binary ops, one entry point each.
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
struct Params { n: u32 }
@group(0) @binding(3) var<storage, read> p: Params;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < p.n) { out[i] = a[i] + b[i]; }
}

@compute @workgroup_size(256)
fn sub(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < p.n) { out[i] = a[i] - b[i]; }
}

@compute @workgroup_size(256)
fn mul(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < p.n) { out[i] = a[i] * b[i]; }
}

// relu_backward: a = relu output y, b = upstream gradient.
@compute @workgroup_size(256)
fn relu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < p.n) { out[i] = select(0.0, b[i], a[i] > 0.0); }
}

@compute @workgroup_size(256)
fn add_relu(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < p.n) { out[i] = max(a[i] + b[i], 0.0); }
}

// log_backward: a = x, b = upstream gradient.
@compute @workgroup_size(256)
fn log_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < p.n) { out[i] = b[i] / a[i]; }
}

// exp(h + l) for a small correction l: exp(r) * 2^k with r = h + l - k ln 2
// reduced to |r| <= ln(2) / 2, where the builtin exp is accurate (its error
// grows with |x| on some drivers). The power of two goes in two halves so
// neither ldexp leaves the exponent range; an overflow gives inf.
fn exp_split(h: f32, l: f32) -> f32 {
    let k = round(h * 1.4426950408889634);
    let r = (h - k * 0.693145751953125) - k * 1.4286068203094172e-6 + l;
    let e = i32(k);
    return ldexp(ldexp(exp(r), e / 2), e - e / 2);
}

// ndtri_backward: a = y = ndtri(p), b = upstream gradient;
// b * sqrt(2 pi) * exp(y^2 / 2). y^2 / 2 is carried exactly as hi^2 / 2
// plus hi * lo + lo^2 / 2, hi being y's top 12 significant bits (hi^2 is
// exact), since exp turns an absolute error in its argument into a
// relative one (a rounded y^2 near 170 is 1e-5 off).
@compute @workgroup_size(256)
fn ndtri_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i < p.n) {
        let y = a[i];
        let hi = bitcast<f32>(bitcast<u32>(y) & 0xfffff000u);
        let lo = y - hi;
        let e = exp_split(0.5 * hi * hi, hi * lo + 0.5 * lo * lo);
        out[i] = b[i] * 2.5066282746310002 * e;
    }
}
