// The tiled GEMM every matrix product and convolution uses:
// C[M, N] = A[M, K] B[K, N] over the K range of split `wg.z`
// ([z * kchunk, (z + 1) * kchunk)). The including kernel defines Params
// (starting m, n, k, kchunk), load_a(m, k), load_b(k, n) (called in bounds
// only) and store(m, n, z, v); the composer defines the tile, TM x TN with
// TM * TN = 4096 (so a small M wastes less of it). A workgroup of 256
// threads computes a tile of C, each thread a 4x4 block, with K staged 16
// at a time through workgroup memory. Each output is summed in K order by
// one thread, so results do not depend on scheduling.

const KT: u32 = 16u;
// Threads along a row of the tile.
const ROW_THREADS: u32 = TN / 4u;

// The current K-tile of A (transposed, [KT][TM]) and of B ([KT][TN]).
var<workgroup> ta: array<f32, TM * KT>;
var<workgroup> tb: array<f32, KT * TN>;

// Stages the K-tile starting at k0 (zero outside C's tile or the split's range).
fn stage(li: u32, m0: u32, n0: u32, k0: u32, k_end: u32) {
    // Neighbouring threads read neighbouring k of A and n of B.
    for (var e = li; e < TM * KT; e += 256u) {
        let am = e / KT;
        let ak = e % KT;
        var va = 0.0;
        if (m0 + am < p.m && k0 + ak < k_end) {
            va = load_a(m0 + am, k0 + ak);
        }
        ta[ak * TM + am] = va;
    }
    for (var e = li; e < KT * TN; e += 256u) {
        let bk = e / TN;
        let bn = e % TN;
        var vb = 0.0;
        if (n0 + bn < p.n && k0 + bk < k_end) {
            vb = load_b(k0 + bk, n0 + bn);
        }
        tb[bk * TN + bn] = vb;
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    // N's tiles run along x, continued on further rows of y when there are
    // more than x can hold; M's tiles take the rest of y.
    let rows = (p.n + TN * nwg.x - 1u) / (TN * nwg.x);
    let m0 = (wg.y / rows) * TM;
    let n0 = (wg.x + (wg.y % rows) * nwg.x) * TN;
    if (n0 >= p.n) {
        return;
    }
    let k_begin = wg.z * p.kchunk;
    let k_end = min(k_begin + p.kchunk, p.k);
    let tm = (li / ROW_THREADS) * 4u;
    let tn = (li % ROW_THREADS) * 4u;
    var acc: array<vec4<f32>, 4>;
    for (var k0 = k_begin; k0 < k_end; k0 += KT) {
        stage(li, m0, n0, k0, k_end);
        workgroupBarrier();
        for (var kk = 0u; kk < KT; kk++) {
            let a = kk * TM + tm;
            let b = kk * TN + tn;
            let bv = vec4<f32>(tb[b], tb[b + 1u], tb[b + 2u], tb[b + 3u]);
            acc[0] = fma(vec4<f32>(ta[a]), bv, acc[0]);
            acc[1] = fma(vec4<f32>(ta[a + 1u]), bv, acc[1]);
            acc[2] = fma(vec4<f32>(ta[a + 2u]), bv, acc[2]);
            acc[3] = fma(vec4<f32>(ta[a + 3u]), bv, acc[3]);
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            let m = m0 + tm + i;
            let n = n0 + tn + j;
            if (m < p.m && n < p.n) {
                store(m, n, wg.z, acc[i][j]);
            }
        }
    }
}
