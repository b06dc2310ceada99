
// Workgroup-wide tree reductions over the WG threads of a workgroup (WG, a
// power of two, is declared by the shader this text is appended to). Every
// thread passes its partial value and gets the result; call them from
// uniform control flow (they hold barriers).
var<workgroup> tree: array<f32, WG>;

fn tree_sum(tid: u32, v: f32) -> f32 {
    tree[tid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (tid < s) { tree[tid] += tree[tid + s]; }
        workgroupBarrier();
    }
    return tree_result();
}

fn tree_max(tid: u32, v: f32) -> f32 {
    tree[tid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (tid < s) { tree[tid] = max(tree[tid], tree[tid + s]); }
        workgroupBarrier();
    }
    return tree_result();
}

// tree[0] for every thread; the barrier lets the next reduction reuse tree.
fn tree_result() -> f32 {
    let r = tree[0];
    workgroupBarrier();
    return r;
}
