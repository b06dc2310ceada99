/**
 * Byte-layout builders and small utilities shared by the data tests.
 *
 * @module
 */
import { deflateSync, gzipSync } from "node:zlib";
import { createHash } from "node:crypto";

/** Hex MD5 of bytes. */
export function md5(b: Uint8Array): string {
  return createHash("md5").update(b).digest("hex");
}

/** Gzips bytes. */
export function gzip(b: Uint8Array): Uint8Array {
  return new Uint8Array(gzipSync(b));
}

/** A fresh temporary folder, removed by the returned disposer. */
export async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "macer-data-test-" });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

/** Deterministic bytes. */
export function patternBytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** An IDX file: big-endian magic 0x0000080N, dims, then the bytes. */
export function idxBytes(
  dims: number[],
  data: Uint8Array,
  magic = 0x0800 | dims.length,
): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, magic, false);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** One MAT v5 data element: tag + data + padding to 8 bytes (small format when it fits). */
function matElement(type: number, data: Uint8Array, allowSmall = true): Uint8Array {
  if (allowSmall && data.length <= 4) {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setUint32(0, (data.length << 16) | type, true);
    out.set(data, 4);
    return out;
  }
  const pad = (8 - (data.length % 8)) % 8;
  const out = new Uint8Array(8 + data.length + pad);
  const v = new DataView(out.buffer);
  v.setUint32(0, type, true);
  v.setUint32(4, data.length, true);
  out.set(data, 8);
  return out;
}

/** A variable for `matBytes`. */
export interface MatVar {
  name: string;
  dims: number[];
  /** uint8 values (class uint8) or float64 values (class double). */
  data: Uint8Array | Float64Array;
}

/**
 * A little-endian MAT v5 file written the way MATLAB and SciPy do, each
 * variable optionally wrapped in a zlib-compressed element.
 */
export function matBytes(vars: MatVar[], compress: boolean): Uint8Array {
  const header = new Uint8Array(128).fill(0x20);
  header.set(new TextEncoder().encode("MATLAB 5.0 MAT-file, written by the data tests"));
  header.fill(0, 116, 124);
  header.set([0x00, 0x01, 0x49, 0x4d], 124); // version 0x0100, "IM"
  const elements = vars.map((mv) => {
    const isU8 = mv.data instanceof Uint8Array;
    const flags = new Uint8Array(8);
    new DataView(flags.buffer).setUint32(0, isU8 ? 9 : 6, true); // mxUINT8 / mxDOUBLE
    const dims = new Uint8Array(4 * mv.dims.length);
    mv.dims.forEach((d, i) => new DataView(dims.buffer).setInt32(4 * i, d, true));
    const raw = new Uint8Array(mv.data.buffer, mv.data.byteOffset, mv.data.byteLength);
    const body = concat([
      matElement(6, flags, false),
      matElement(5, dims, false),
      matElement(1, new TextEncoder().encode(mv.name)),
      matElement(isU8 ? 2 : 9, raw, false),
    ]);
    const matrix = concat([
      (() => {
        const tag = new Uint8Array(8);
        new DataView(tag.buffer).setUint32(0, 14, true);
        new DataView(tag.buffer).setUint32(4, body.length, true);
        return tag;
      })(),
      body,
    ]);
    if (!compress) return matrix;
    const z = new Uint8Array(deflateSync(matrix));
    const tag = new Uint8Array(8);
    new DataView(tag.buffer).setUint32(0, 15, true);
    new DataView(tag.buffer).setUint32(4, z.length, true);
    return concat([tag, z]);
  });
  return concat([header, ...elements]);
}

/** SVHN-shaped X (32x32x3xN, column-major) and y (Nx1 double) variables. */
export function svhnVars(labels: number[], seed = 7): { X: MatVar; y: MatVar } {
  const n = labels.length;
  return {
    X: { name: "X", dims: [32, 32, 3, n], data: patternBytes(3072 * n, seed) },
    y: { name: "y", dims: [n, 1], data: Float64Array.from(labels) },
  };
}

/** A minimal ustar archive of regular files. */
export function tarBytes(files: { name: string; data: Uint8Array }[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const f of files) {
    const h = new Uint8Array(512);
    const enc = new TextEncoder();
    h.set(enc.encode(f.name), 0);
    h.set(enc.encode("0000644\0"), 100);
    h.set(enc.encode("0000000\0"), 108);
    h.set(enc.encode("0000000\0"), 116);
    h.set(enc.encode(f.data.length.toString(8).padStart(11, "0") + "\0"), 124);
    h.set(enc.encode("00000000000\0"), 136);
    h[156] = 0x30;
    h.set(enc.encode("ustar\x0000"), 257);
    h.fill(0x20, 148, 156);
    const sum = h.reduce((a, b) => a + b, 0);
    h.set(enc.encode(sum.toString(8).padStart(6, "0") + "\0 "), 148);
    parts.push(h, f.data, new Uint8Array((512 - (f.data.length % 512)) % 512));
  }
  parts.push(new Uint8Array(1024));
  return concat(parts);
}

/** Serves `routes` (path -> bytes) on 127.0.0.1 at a free port. */
export function serveFiles(
  routes: Record<string, Uint8Array>,
): { baseUrl: string; requests: string[] } & AsyncDisposable {
  const requests: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    requests.push(path);
    const body = routes[path];
    if (body === undefined) return new Response("not found", { status: 404 });
    return new Response(body.slice(), {
      headers: { "content-length": String(body.length) },
    });
  });
  return {
    baseUrl: `http://127.0.0.1:${server.addr.port}/files/`,
    requests,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
    },
  };
}
