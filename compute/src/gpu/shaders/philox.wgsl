// Philox 4x32-10 and Box-Muller, the cpu's generator (crate::philox) in
// 32-bit integers and f32. A library: kernels are appended to this source.

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

// The 64-bit product a * b as (hi, lo): WGSL has no u64, so the high word
// is assembled from the four products of 16-bit halves.
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xFFFFu;
    let a1 = a >> 16u;
    let b0 = b & 0xFFFFu;
    let b1 = b >> 16u;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    // Carry into the high word from the sum of the middle terms (< 2^18).
    let mid = ((a0 * b0) >> 16u) + (p01 & 0xFFFFu) + (p10 & 0xFFFFu);
    let hi = a1 * b1 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox4x32(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = ctr;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        let m0 = mulhilo(PHILOX_M0, c.x);
        let m1 = mulhilo(PHILOX_M1, c.z);
        c = vec4<u32>(m1.x ^ c.y ^ k.x, m1.y, m0.x ^ c.w ^ k.y, m0.y);
        k += vec2<u32>(PHILOX_W0, PHILOX_W1);
    }
    return c;
}

// (x + 1) / 2^32 rounded once to f32, as the cpu does through f64. The
// rounding to 24 bits (to nearest, ties to even) is done in integers: a
// u32 to f32 conversion need not round to nearest.
fn uniform(x: u32) -> f32 {
    if (x == 0xFFFFFFFFu) {
        return 1.0;
    }
    let v = x + 1u;
    let lead = firstLeadingBit(v);
    if (lead < 24u) {
        return ldexp(f32(v), -32);
    }
    let shift = lead - 23u;
    let q = v >> shift;
    let rem = v & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    let up = rem > half || (rem == half && (q & 1u) == 1u);
    return ldexp(f32(q + u32(up)), i32(shift) - 32);
}

// Natural log for x in (0, 1] (Cephes logf). WGSL's log only promises an
// absolute error of 2^-21 near 1, which sqrt(-2 log u) turns into a large
// error of a small radius; this uses only correctly rounded + - * (~1 ulp).
fn ln_unit(x: f32) -> f32 {
    let fr = frexp(x);
    var m = fr.fract;
    var e = f32(fr.exp);
    if (m < 0.70710678118654752) {
        e -= 1.0;
        m = m + m - 1.0;
    } else {
        m = m - 1.0;
    }
    let z = m * m;
    var y = 7.0376836292e-2;
    y = y * m - 1.1514610310e-1;
    y = y * m + 1.1676998740e-1;
    y = y * m - 1.2420140846e-1;
    y = y * m + 1.4249322787e-1;
    y = y * m - 1.6668057665e-1;
    y = y * m + 2.0000714765e-1;
    y = y * m - 2.4999993993e-1;
    y = y * m + 3.3333331174e-1;
    y = y * m * z;
    y += -2.12194440e-4 * e;
    y += -0.5 * z;
    return m + y + 0.693359375 * e;
}

// (cos a, sin a) for a in [0, 2 pi] (Cephes sinf/cosf: octant reduction with
// pi/4 in three parts). WGSL's sin and cos only promise 2^-11 absolutely.
fn cos_sin(a: f32) -> vec2<f32> {
    var j = u32(a * 1.27323954473516);
    var y = f32(j);
    if ((j & 1u) == 1u) {
        j += 1u;
        y += 1.0;
    }
    j &= 7u;
    let x = ((a - y * 0.78515625) - y * 2.4187564849853515625e-4) - y * 3.77489497744594108e-8;
    let z = x * x;
    let s = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * x + x;
    let c = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z
        - 0.5 * z + 1.0;
    // Octants 0..7 in pairs: (c, s), (-s, c), (-c, -s), (s, -c).
    let q = j >> 1u;
    var cs = vec2<f32>(c, s);
    if ((q & 1u) == 1u) {
        cs = vec2<f32>(-s, c);
    }
    if (q >= 2u) {
        cs = -cs;
    }
    return cs;
}

// Two normals from two uniform words, as crate::philox::normals4.
fn box_muller(w1: u32, w2: u32) -> vec2<f32> {
    let radius = sqrt(-2.0 * ln_unit(uniform(w1)));
    // std::f32::consts::TAU.
    let angle = bitcast<f32>(0x40C90FDBu) * uniform(w2);
    return radius * cos_sin(angle);
}

// The four normals of block `block` (lo, hi) of stream `seed` (lo, hi).
fn normals4(seed: vec2<u32>, block: vec2<u32>) -> vec4<f32> {
    let r = philox4x32(vec4<u32>(block.x, block.y, 0u, 0u), seed);
    return vec4<f32>(box_muller(r.x, r.y), box_muller(r.z, r.w));
}

// Block `first + j` of a draw, with the carry into the high word.
fn block_at(first: vec2<u32>, j: u32) -> vec2<u32> {
    let lo = first.x + j;
    return vec2<u32>(lo, first.y + u32(lo < j));
}
