"""The training noise of the Deno/Rust engine, regenerated with NumPy.

Philox 4x32-10 (Salmon et al., SC'11) on counter [block lo, block hi, 0, 0]
with key [seed lo, seed hi], then Box-Muller in float32, exactly as
compute/src/philox.rs: element i of a draw at `offset` is normal number
offset + i of stream `seed`.
"""
import numpy as np

M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
W0, W1 = 0x9E3779B9, 0xBB67AE85
MASK = np.uint64(0xFFFFFFFF)


def philox4x32(blocks, seed):
    """Ten Philox rounds for each block number (uint64 array): 4 uint32 words each."""
    c0 = blocks & MASK
    c1 = blocks >> np.uint64(32)
    c2 = np.zeros_like(c0)
    c3 = np.zeros_like(c0)
    k0, k1 = seed & 0xFFFFFFFF, seed >> 32
    for _ in range(10):
        p0 = M0 * c0
        p1 = M1 * c2
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ np.uint64(k0), p1 & MASK,
                          (p0 >> np.uint64(32)) ^ c3 ^ np.uint64(k1), p0 & MASK)
        k0, k1 = (k0 + W0) & 0xFFFFFFFF, (k1 + W1) & 0xFFFFFFFF
    return np.stack([c0, c1, c2, c3], axis=1)


def f32(fn, x):
    """fn of float32 x, correctly rounded (as glibc's logf, cosf and sinf are)."""
    return fn(x.astype(np.float64)).astype(np.float32)


def normals(count, seed, offset):
    """`count` standard normals (float32) at positions offset.. of stream `seed`."""
    assert offset % 4 == 0
    blocks = np.arange(offset // 4, offset // 4 + (count + 3) // 4, dtype=np.uint64)
    r = philox4x32(blocks, seed)
    u = ((r.astype(np.float64) + 1.0) * (1.0 / 4294967296.0)).astype(np.float32)
    out = np.empty((len(blocks), 4), dtype=np.float32)
    tau = np.float32(2 * np.pi)
    for pair in range(2):
        radius = np.sqrt(np.float32(-2.0) * f32(np.log, u[:, 2 * pair]))
        angle = tau * u[:, 2 * pair + 1]
        out[:, 2 * pair] = radius * f32(np.cos, angle)
        out[:, 2 * pair + 1] = radius * f32(np.sin, angle)
    return out.reshape(-1)[:count]
