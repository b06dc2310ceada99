/**
 * safetensors reader and writer (https://github.com/huggingface/safetensors format):
 * 8-byte little-endian header length N, N bytes of JSON header
 * (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {..}}`),
 * then the tensor bytes, offsets relative to the end of the header.
 *
 * The reader checks everything before allocating, so a hostile or truncated file gives a
 * {@linkcode SafetensorsError}, never a crash or a huge allocation.
 *
 * @module
 */

import { writeFileAtomic } from "./atomic.ts";

/** Element types, with the typed array that holds them (F16/BF16 as raw bits). */
export type Dtype =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U64"
  | "U32"
  | "U16"
  | "U8"
  | "BOOL";

/** The typed arrays tensors are stored in. */
export type TensorData =
  | Float64Array
  | Float32Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | BigUint64Array
  | Uint32Array
  | Uint16Array
  | Uint8Array;

/** One tensor: dtype, shape (row-major) and its elements. */
export interface Tensor {
  dtype: Dtype;
  shape: number[];
  data: TensorData;
}

/** Contents of a safetensors file. */
export interface SafetensorsFile {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

/** A malformed or hostile safetensors file, or an invalid tensor to write. */
export class SafetensorsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SafetensorsError";
  }
}

type ArrayCtor = { new (buf: ArrayBuffer): TensorData; BYTES_PER_ELEMENT: number };

const DTYPES: Record<Dtype, ArrayCtor> = {
  F64: Float64Array,
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U64: BigUint64Array,
  U32: Uint32Array,
  U16: Uint16Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

/** Largest header the reader accepts (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error("safetensors.ts assumes a little-endian platform");
}

function fail(msg: string): never {
  throw new SafetensorsError(msg);
}

function isDtype(s: unknown): s is Dtype {
  return typeof s === "string" && Object.hasOwn(DTYPES, s);
}

function elementCount(shape: readonly number[], where: string): number {
  let count = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) fail(`${where}: shape entry ${d} is not a size`);
    count *= d;
    if (!Number.isSafeInteger(count)) fail(`${where}: shape ${JSON.stringify(shape)} overflows`);
  }
  return count;
}

/**
 * Parses safetensors bytes, validating the header fully: length within the file, UTF-8
 * JSON object, known dtypes, integer shapes whose byte size matches the offsets, and
 * offsets that tile the data area exactly (sorted, no gaps, no overlaps, nothing after).
 *
 * @param bytes the whole file
 * @returns tensors (copied into fresh typed arrays) and the metadata map
 * @throws {SafetensorsError} for any malformed input
 */
export function parseSafetensors(bytes: Uint8Array): SafetensorsFile {
  if (bytes.length < 8) {
    fail(`File is ${bytes.length} bytes, shorter than the 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n64 = view.getBigUint64(0, true);
  if (n64 > BigInt(bytes.length - 8)) {
    fail(`Header length ${n64} runs past the end of the ${bytes.length}-byte file`);
  }
  const n = Number(n64);
  if (n > MAX_HEADER_BYTES) fail(`Header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (n < 2) fail(`Header length ${n} is too small for a JSON object`);
  let header: unknown;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n));
    header = JSON.parse(text);
  } catch (e) {
    fail(`Header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail("Header is not a JSON object");
  }
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;

  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: Dtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
        fail("__metadata__ is not a JSON object");
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__ value for "${k}" is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const where = `Tensor "${name}"`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      fail(`${where}: entry is not a JSON object`);
    }
    const { dtype, shape, data_offsets: offs } = raw as Record<string, unknown>;
    if (!isDtype(dtype)) fail(`${where}: unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape)) fail(`${where}: shape is not an array`);
    if (!Array.isArray(offs) || offs.length !== 2) {
      fail(`${where}: data_offsets is not [begin, end]`);
    }
    const [begin, end] = offs;
    if (!Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || begin < 0 || end < begin) {
      fail(`${where}: data_offsets ${JSON.stringify(offs)} are not 0 <= begin <= end`);
    }
    if (end > dataLen) {
      fail(`${where}: data_offsets end ${end} is past the data (${dataLen} bytes)`);
    }
    const count = elementCount(shape as number[], where);
    const size = DTYPES[dtype].BYTES_PER_ELEMENT;
    if (count * size !== end - begin) {
      fail(
        `${where}: shape ${JSON.stringify(shape)} of ${dtype} needs ${
          count * size
        } bytes, offsets give ${end - begin}`,
      );
    }
    entries.push({ name, dtype, shape: [...(shape as number[])], begin, end });
  }

  // The tensors must tile the data area: sorted by offset, each starting where the last ended.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const e of sorted) {
    if (e.begin < cursor) {
      fail(`Tensor "${e.name}" overlaps the previous tensor (offset ${e.begin} < ${cursor})`);
    }
    if (e.begin > cursor) {
      fail(`Gap in the data before tensor "${e.name}" (offset ${e.begin}, expected ${cursor})`);
    }
    cursor = e.end;
  }
  if (cursor !== dataLen) fail(`Data area is ${dataLen} bytes but the tensors cover ${cursor}`);

  const tensors: Record<string, Tensor> = {};
  for (const e of entries) {
    const Ctor = DTYPES[e.dtype];
    // Copy into an owned, aligned buffer: no aliasing of the file bytes.
    const buf = bytes.buffer.slice(
      bytes.byteOffset + dataStart + e.begin,
      bytes.byteOffset + dataStart + e.end,
    ) as ArrayBuffer;
    tensors[e.name] = { dtype: e.dtype, shape: e.shape, data: new Ctor(buf) };
  }
  return { tensors, metadata };
}

/**
 * Reads a safetensors file.
 *
 * @param source a path, or the file's bytes
 * @returns tensors and metadata
 * @throws {SafetensorsError} for malformed files
 */
export async function readSafetensors(source: string | Uint8Array): Promise<SafetensorsFile> {
  if (typeof source !== "string") return parseSafetensors(source);
  return parseSafetensors(await Deno.readFile(source));
}

function checkData(name: string, t: Tensor): void {
  const where = `Tensor "${name}"`;
  if (!isDtype(t.dtype)) fail(`${where}: unknown dtype ${JSON.stringify(t.dtype)}`);
  const Ctor = DTYPES[t.dtype];
  if (!(t.data instanceof (Ctor as unknown as typeof Uint8Array))) {
    fail(`${where}: ${t.dtype} data must be a ${Ctor.name}, got ${t.data?.constructor?.name}`);
  }
  if (!Array.isArray(t.shape)) fail(`${where}: shape is not an array`);
  const count = elementCount(t.shape, where);
  if (count !== t.data.length) {
    fail(
      `${where}: shape ${JSON.stringify(t.shape)} has ${count} elements, data has ${t.data.length}`,
    );
  }
}

/**
 * Serializes tensors to safetensors bytes. Tensors are laid out by decreasing element size
 * then name, and the header is space-padded to 8 bytes, so every tensor is aligned to its
 * element size (as the reference writer does).
 *
 * @param tensors name -> tensor
 * @param metadata free-form string map stored as `__metadata__`
 * @returns the file contents
 * @throws {SafetensorsError} when data and shape disagree or a name is reserved
 */
export function serializeSafetensors(
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const names = Object.keys(tensors);
  for (const name of names) {
    if (name === "__metadata__") fail(`"__metadata__" is reserved and cannot name a tensor`);
    checkData(name, tensors[name]);
  }
  const size = (n: string) => DTYPES[tensors[n].dtype].BYTES_PER_ELEMENT;
  names.sort((a, b) => size(b) - size(a) || (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") fail(`Metadata value for "${k}" is not a string`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    const bytes = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = (json.length + 7) & ~7;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const name of names) {
    const d = tensors[name].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
}

/**
 * Writes tensors to a safetensors file atomically (temp file, fsync, rename).
 *
 * @param path destination file
 * @param tensors name -> { dtype, shape, data }
 * @param metadata optional string map (`__metadata__`)
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSafetensors, writeSafetensors } from "./safetensors.ts";
 * const path = `${await Deno.makeTempDir()}/w.safetensors`;
 * await writeSafetensors(path, { w: { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) } });
 * assert.ok((await readSafetensors(path)).tensors.w.data[1] === 2);
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, serializeSafetensors(tensors, metadata));
}
