
// Test entries: the generator's words and uniforms, for bit-exact checks.
@group(0) @binding(0) var<storage, read> words_in: array<u32>;
@group(0) @binding(1) var<storage, read_write> words_out: array<u32>;
struct Params { n: u32 }
@group(0) @binding(2) var<storage, read> p: Params;

// Block j: counter words_in[6j..6j + 4], key words_in[6j + 4..6j + 6].
@compute @workgroup_size(256)
fn philox_words(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if (j < p.n) {
        let b = 6u * j;
        let ctr = vec4<u32>(words_in[b], words_in[b + 1u], words_in[b + 2u], words_in[b + 3u]);
        let key = vec2<u32>(words_in[b + 4u], words_in[b + 5u]);
        let r = philox4x32(ctr, key);
        for (var l = 0u; l < 4u; l++) {
            words_out[4u * j + l] = r[l];
        }
    }
}

@compute @workgroup_size(256)
fn uniform_bits(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i < p.n) {
        words_out[i] = bitcast<u32>(uniform(words_in[i]));
    }
}
