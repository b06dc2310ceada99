/**
 * A writer of MATLAB Level 5 MAT-files holding real double matrices: what MACER stores
 * with `scipy.io.savemat(matfile, {'hard': radii, 'soft': radii})`. Uncompressed,
 * little-endian, readable by SciPy's `loadmat`, MATLAB/Octave and `mat-for-js`.
 *
 * @module
 */

import { writeFileAtomic } from "./atomic.ts";

/** A real double matrix, `data` in column-major (MATLAB) order. */
export interface MatMatrix {
  rows: number;
  cols: number;
  data: ArrayLike<number>;
}

/** A variable: a matrix, or a plain vector stored with the orientation of `oneD`. */
export type MatValue = ArrayLike<number> | MatMatrix;

/** Options of {@linkcode encodeMat}. */
export interface MatOptions {
  /**
   * Orientation of plain vectors: "row" (1xN, SciPy's `savemat` default and so MACER's
   * files) or "column" (Nx1).
   */
  oneD?: "row" | "column";
  /** Timestamp written into the text header (default: now); fix it for reproducible bytes. */
  createdAt?: Date;
}

const MI_INT8 = 1;
const MI_INT32 = 5;
const MI_UINT32 = 6;
const MI_DOUBLE = 9;
const MI_MATRIX = 14;
const MX_DOUBLE_CLASS = 6;
const HEADER_BYTES = 128;
const NAME_RE = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;

const pad8 = (n: number) => (n + 7) & ~7;

function isMatrix(v: MatValue): v is MatMatrix {
  return typeof (v as MatMatrix).rows === "number" && (v as MatMatrix).data !== undefined;
}

/** C's asctime(), as MATLAB and SciPy put in the header: "Thu Nov 27 12:00:00 2026". */
function asctime(d: Date): string {
  const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const months = [
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
  ];
  const two = (n: number) => String(n).padStart(2, "0");
  return `${days[d.getUTCDay()]} ${months[d.getUTCMonth()]} ${
    String(d.getUTCDate()).padStart(2, " ")
  } ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${
    two(d.getUTCSeconds())
  } ${d.getUTCFullYear()}`;
}

function normalize(name: string, v: MatValue, oneD: "row" | "column"): MatMatrix {
  if (!NAME_RE.test(name)) {
    throw new RangeError(`MAT variable name must be a MATLAB identifier (<= 63 chars): ${name}`);
  }
  const m = isMatrix(v)
    ? v
    : oneD === "row"
    ? { rows: 1, cols: v.length, data: v }
    : { rows: v.length, cols: 1, data: v };
  if (!Number.isInteger(m.rows) || !Number.isInteger(m.cols) || m.rows < 0 || m.cols < 0) {
    throw new RangeError(`MAT variable ${name} has invalid dimensions ${m.rows}x${m.cols}`);
  }
  if (m.rows * m.cols !== m.data.length) {
    throw new RangeError(
      `MAT variable ${name}: ${m.rows}x${m.cols} needs ${
        m.rows * m.cols
      } values, got ${m.data.length}`,
    );
  }
  // The element size is a uint32 that also covers the tags and the name.
  if (m.data.length * 8 + 256 > 0xffffffff) {
    throw new RangeError(`MAT variable ${name} is too large for a Level 5 file`);
  }
  return m;
}

/** Bytes of one miMATRIX element including its own 8-byte tag. */
function matrixElementBytes(name: string, m: MatMatrix): number {
  const nameBytes = name.length <= 4 ? 8 : 8 + pad8(name.length);
  return 8 + 16 + 16 + nameBytes + 8 + m.data.length * 8;
}

/**
 * Encodes variables into the bytes of a MAT v5 file.
 *
 * @param vars variable name -> double matrix or vector
 * @param opts vector orientation and header timestamp
 * @returns the file contents
 * @throws {RangeError} for invalid names or shapes
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeMat } from "./mat_writer.ts";
 * const bytes = encodeMat({ hard: [0.5, -1, 0.25] });
 * assert.ok(bytes.length === 128 + 56 + 3 * 8); // header, tags and name, data
 * ```
 */
export function encodeMat(vars: Record<string, MatValue>, opts: MatOptions = {}): Uint8Array {
  const oneD = opts.oneD ?? "row";
  const entries = Object.entries(vars).map(([k, v]) => [k, normalize(k, v, oneD)] as const);
  let total = HEADER_BYTES;
  for (const [name, m] of entries) total += matrixElementBytes(name, m);
  const buf = new Uint8Array(total);
  const view = new DataView(buf.buffer);

  // Header: 116 bytes of text, 8 bytes subsystem offset (none), version 0x0100, "IM".
  const text = `MATLAB 5.0 MAT-file, Platform: deno, Created on: ${
    asctime(opts.createdAt ?? new Date())
  }`;
  buf.fill(0x20, 0, 116);
  buf.set(new TextEncoder().encode(text).subarray(0, 116), 0);
  view.setUint16(124, 0x0100, true);
  buf[126] = 0x49; // 'I'
  buf[127] = 0x4d; // 'M': read little-endian as 0x4D49, so the file is little-endian

  let off = HEADER_BYTES;
  const u32 = (v: number) => {
    view.setUint32(off, v, true);
    off += 4;
  };
  for (const [name, m] of entries) {
    u32(MI_MATRIX);
    u32(matrixElementBytes(name, m) - 8);
    // Array flags: class double, not complex/global/logical.
    u32(MI_UINT32);
    u32(8);
    u32(MX_DOUBLE_CLASS);
    u32(0);
    // Dimensions.
    u32(MI_INT32);
    u32(8);
    view.setInt32(off, m.rows, true);
    view.setInt32(off + 4, m.cols, true);
    off += 8;
    // Name: the compact 4-byte form when it fits, as MATLAB writes it.
    if (name.length <= 4) {
      u32((name.length << 16) | MI_INT8);
      for (let i = 0; i < name.length; i++) buf[off + i] = name.charCodeAt(i);
      off += 4;
    } else {
      u32(MI_INT8);
      u32(name.length);
      for (let i = 0; i < name.length; i++) buf[off + i] = name.charCodeAt(i);
      off += pad8(name.length);
    }
    // Real part.
    u32(MI_DOUBLE);
    u32(m.data.length * 8);
    for (let i = 0; i < m.data.length; i++) {
      view.setFloat64(off, m.data[i], true);
      off += 8;
    }
  }
  return buf;
}

/**
 * Writes variables to a MAT v5 file atomically (temp file, fsync, rename).
 *
 * @param path destination `.mat` file
 * @param vars variable name -> double matrix or vector (vectors are 1xN by default)
 * @param opts vector orientation and header timestamp
 */
export async function writeMat(
  path: string,
  vars: Record<string, MatValue>,
  opts: MatOptions = {},
): Promise<void> {
  await writeFileAtomic(path, encodeMat(vars, opts));
}
