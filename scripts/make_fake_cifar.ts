/**
 * Writes full-size synthetic CIFAR-10 files in both distributions' exact byte
 * layouts, for load-time measurements without the real data:
 *
 *   deno run -A scripts/make_fake_cifar.ts [OUT_DIR]   (default /tmp/fake-cifar10)
 *
 * produces OUT_DIR/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin and
 * OUT_DIR/cifar-10-batches-py/{data_batch_1..5,test_batch}, 10,000 random
 * images each. The python batches are pickled the way the real files are
 * (Python 2 cPickle, protocol 2: byte strings as SHORT_BINSTRING/BINSTRING,
 * memo slots from 1, LONG_BINPUT past 255).
 *
 * @module
 */

const enc = new TextEncoder();

/** Builds pickle bytes piece by piece. */
class PickleWriter {
  parts: Uint8Array[] = [];
  memo = 1;
  bytes(...b: number[]) {
    this.parts.push(Uint8Array.from(b));
  }
  raw(b: Uint8Array) {
    this.parts.push(b);
  }
  u32(n: number): number[] {
    return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
  }
  put() {
    const i = this.memo++;
    if (i < 256) this.bytes(0x71, i);
    else this.bytes(0x72, ...this.u32(i));
  }
  str(s: string | Uint8Array) {
    const b = typeof s === "string" ? enc.encode(s) : s;
    if (b.length < 256) this.bytes(0x55, b.length);
    else this.bytes(0x54, ...this.u32(b.length));
    this.raw(b);
  }
  int(n: number) {
    if (n < 256) this.bytes(0x4b, n);
    else if (n < 65536) this.bytes(0x4d, n & 0xff, n >> 8);
    else this.bytes(0x4a, ...this.u32(n));
  }
  global(module: string, name: string) {
    this.bytes(0x63);
    this.raw(enc.encode(`${module}\n${name}\n`));
  }
  concat(): Uint8Array {
    const total = this.parts.reduce((a, p) => a + p.length, 0);
    const out = new Uint8Array(total);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

/**
 * One CIFAR-10 python batch, pickled like the original Python 2 files.
 *
 * @param data N x 3072 uint8 pixels
 * @param labels N labels
 * @param batchLabel the `batch_label` string
 */
export function cifarPy2Pickle(data: Uint8Array, labels: number[], batchLabel: string): Uint8Array {
  const n = labels.length;
  const w = new PickleWriter();
  w.bytes(0x80, 0x02, 0x7d); // PROTO 2, EMPTY_DICT
  w.put();
  w.bytes(0x28); // MARK
  w.str("data");
  w.put();
  w.global("numpy.core.multiarray", "_reconstruct");
  w.put();
  w.global("numpy", "ndarray");
  w.put();
  w.int(0);
  w.bytes(0x85); // TUPLE1
  w.str("b");
  w.bytes(0x87, 0x52); // TUPLE3, REDUCE
  w.put();
  w.bytes(0x28); // MARK: the state tuple
  w.int(1);
  w.int(n);
  w.int(3072);
  w.bytes(0x86); // TUPLE2 (shape)
  w.global("numpy", "dtype");
  w.put();
  w.str("u1");
  w.int(0);
  w.int(1);
  w.bytes(0x87, 0x52); // TUPLE3, REDUCE
  w.put();
  w.bytes(0x28); // MARK: dtype state
  w.int(3);
  w.str("|");
  w.bytes(0x4e, 0x4e, 0x4e); // NONE x3
  w.bytes(0x4a, 0xff, 0xff, 0xff, 0xff, 0x4a, 0xff, 0xff, 0xff, 0xff); // BININT -1 x2
  w.int(0);
  w.bytes(0x74, 0x62); // TUPLE, BUILD
  w.bytes(0x89); // NEWFALSE (not Fortran order)
  w.str(data);
  w.bytes(0x74, 0x62); // TUPLE, BUILD
  w.str("labels");
  w.put();
  w.bytes(0x5d); // EMPTY_LIST
  w.put();
  w.bytes(0x28);
  for (const l of labels) w.int(l);
  w.bytes(0x65); // APPENDS
  w.str("batch_label");
  w.put();
  w.str(batchLabel);
  w.put();
  w.str("filenames");
  w.put();
  w.bytes(0x5d);
  w.put();
  w.bytes(0x28);
  for (let i = 0; i < n; i++) {
    w.str(`synthetic_${String(i).padStart(6, "0")}.png`);
    w.put();
  }
  w.bytes(0x65); // APPENDS
  w.bytes(0x75, 0x2e); // SETITEMS, STOP
  return w.concat();
}

/**
 * One binary batch: per image, a label byte then 3,072 pixel bytes.
 *
 * @param data N x 3072 uint8 pixels
 * @param labels N labels
 */
export function cifarBinBatch(data: Uint8Array, labels: number[]): Uint8Array {
  const out = new Uint8Array(labels.length * 3073);
  for (let i = 0; i < labels.length; i++) {
    out[i * 3073] = labels[i];
    out.set(data.subarray(i * 3072, (i + 1) * 3072), i * 3073 + 1);
  }
  return out;
}

/** A deterministic pseudo-random byte filler (xorshift32). */
export function fillPseudoRandom(buf: Uint8Array, seed: number): void {
  let s = seed >>> 0 || 1;
  for (let i = 0; i < buf.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    buf[i] = s & 0xff;
  }
}

if (import.meta.main) {
  const out = Deno.args[0] ?? "/tmp/fake-cifar10";
  const names = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}`).concat(["test_batch"]);
  await Deno.mkdir(`${out}/cifar-10-batches-bin`, { recursive: true });
  await Deno.mkdir(`${out}/cifar-10-batches-py`, { recursive: true });
  for (let b = 0; b < names.length; b++) {
    const data = new Uint8Array(10_000 * 3072);
    fillPseudoRandom(data, 1 + b);
    const labels = Array.from({ length: 10_000 }, (_, i) => (i * 7 + b) % 10);
    await Deno.writeFile(
      `${out}/cifar-10-batches-bin/${names[b]}.bin`,
      cifarBinBatch(data, labels),
    );
    await Deno.writeFile(
      `${out}/cifar-10-batches-py/${names[b]}`,
      cifarPy2Pickle(data, labels, `synthetic batch ${b + 1}`),
    );
  }
  console.log(`wrote ${out}/cifar-10-batches-{bin,py}`);
}
