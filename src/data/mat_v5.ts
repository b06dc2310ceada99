/**
 * A streaming reader for numeric arrays in MATLAB MAT v5 files (what SciPy's
 * `savemat` and MATLAB's `save -v7` write), including zlib-compressed
 * (`miCOMPRESSED`) elements.
 *
 * The file is read as a stream and a wanted array's data goes straight into
 * one typed array: a 32x32x3xN uint8 image array costs its own size in memory
 * and nothing more. Arrays that are not asked for are skipped without being
 * decoded (compressed ones without being inflated). Cells, structs, sparse
 * and complex arrays are skipped, or refused when asked for.
 *
 * @module
 */
import { ByteReader, EndOfStreamError, openFileReader } from "./_byte_reader.ts";
import { DatasetError } from "./errors.ts";

/** One numeric MAT array. */
export interface MatArray {
  name: string;
  /** MATLAB class name: "double", "uint8", ... */
  className: string;
  /** Dimensions in MATLAB order (column-major: the first varies fastest). */
  dims: number[];
  /**
   * The values in column-major order: the stored bytes themselves when the
   * storage type is uint8, otherwise converted to float64.
   */
  data: Uint8Array | Float64Array;
}

// Data types (MAT-file format, table 1-1).
const MI_INT8 = 1, MI_UINT8 = 2, MI_INT32 = 5, MI_UINT32 = 6;
const MI_MATRIX = 14, MI_COMPRESSED = 15;
const TYPE_SIZE: Record<number, number> = {
  1: 1,
  2: 1,
  3: 2,
  4: 2,
  5: 4,
  6: 4,
  7: 4,
  9: 8,
  12: 8,
  13: 8,
};
// Array classes (table 1-3); 6..15 are numeric.
const CLASS_NAMES: Record<number, string> = {
  1: "cell",
  2: "struct",
  3: "object",
  4: "char",
  5: "sparse",
  6: "double",
  7: "single",
  8: "int8",
  9: "uint8",
  10: "int16",
  11: "uint16",
  12: "int32",
  13: "uint32",
  14: "int64",
  15: "uint64",
};

interface Tag {
  type: number;
  nbytes: number;
  /** The payload of a small data element (data packed into the tag). */
  small?: Uint8Array;
}

class MatParser {
  constructor(readonly path: string, readonly le: boolean) {}

  u32(b: Uint8Array, at = 0): number {
    return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(at, this.le);
  }

  async tag(r: ByteReader): Promise<Tag> {
    const head = await r.read(8);
    const first = this.u32(head, 0);
    // Small data element: byte count in the upper 16 bits, data in the last 4 bytes.
    if (first >>> 16 !== 0) {
      const nbytes = first >>> 16;
      if (nbytes > 4) throw new DatasetError(`malformed small data element`, this.path);
      return { type: first & 0xffff, nbytes, small: head.subarray(4, 4 + nbytes) };
    }
    return { type: first, nbytes: this.u32(head, 4) };
  }

  async payload(r: ByteReader, t: Tag): Promise<Uint8Array> {
    if (t.small) return t.small;
    const b = await r.read(t.nbytes);
    await r.skip(pad8(t.nbytes));
    return b;
  }

  /** Converts stored values of `type` to float64. */
  toFloat64(b: Uint8Array, type: number): Float64Array {
    const size = TYPE_SIZE[type];
    const n = b.length / size;
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const out = new Float64Array(n);
    const le = this.le;
    for (let i = 0; i < n; i++) {
      const o = i * size;
      switch (type) {
        case 1:
          out[i] = v.getInt8(o);
          break;
        case 2:
          out[i] = v.getUint8(o);
          break;
        case 3:
          out[i] = v.getInt16(o, le);
          break;
        case 4:
          out[i] = v.getUint16(o, le);
          break;
        case 5:
          out[i] = v.getInt32(o, le);
          break;
        case 6:
          out[i] = v.getUint32(o, le);
          break;
        case 7:
          out[i] = v.getFloat32(o, le);
          break;
        case 9:
          out[i] = v.getFloat64(o, le);
          break;
        case 12:
          out[i] = Number(v.getBigInt64(o, le));
          break;
        case 13:
          out[i] = Number(v.getBigUint64(o, le));
          break;
      }
    }
    return out;
  }

  /**
   * Parses the body of an miMATRIX element of `nbytes` bytes. Returns the
   * array when its name is wanted, else skips the rest and returns undefined.
   */
  async matrix(r: ByteReader, nbytes: number, wanted: Set<string>): Promise<MatArray | undefined> {
    const start = r.position;
    const end = start + nbytes;
    const skipRest = async () => {
      if (r.position > end) throw new DatasetError(`matrix element overruns its size`, this.path);
      await r.skip(end - r.position);
    };
    if (nbytes === 0) return undefined; // an empty placeholder element
    const flagsTag = await this.tag(r);
    const flags = await this.payload(r, flagsTag);
    if (flagsTag.type !== MI_UINT32 || flags.length !== 8) {
      throw new DatasetError(`malformed array flags`, this.path);
    }
    const word = this.u32(flags, 0);
    const classId = word & 0xff;
    const complex = (word & 0x0800) !== 0;
    const className = CLASS_NAMES[classId] ?? `class ${classId}`;
    if (classId === 2 || classId === 3 || classId === 5) {
      // Structs, objects and sparse arrays are laid out differently; never wanted here.
      await skipRest();
      return undefined;
    }
    const dimsTag = await this.tag(r);
    const dimsBytes = await this.payload(r, dimsTag);
    if (dimsTag.type !== MI_INT32 || dimsBytes.length % 4 !== 0) {
      throw new DatasetError(`malformed dimensions`, this.path);
    }
    const dims: number[] = [];
    for (let i = 0; i < dimsBytes.length; i += 4) dims.push(this.u32(dimsBytes, i));
    const nameTag = await this.tag(r);
    const nameBytes = await this.payload(r, nameTag);
    if (nameTag.type !== MI_INT8 && nameTag.type !== MI_UINT8) {
      throw new DatasetError(`malformed array name`, this.path);
    }
    const name = new TextDecoder().decode(nameBytes);
    if (!wanted.has(name)) {
      await skipRest();
      return undefined;
    }
    if (classId < 6 || classId > 15 || complex) {
      throw new DatasetError(
        `variable '${name}' is a ${complex ? "complex " : ""}${className} array, ` +
          `expected a real numeric array`,
        this.path,
      );
    }
    const count = dims.reduce((a, b) => a * b, 1);
    const dataTag = await this.tag(r);
    const size = TYPE_SIZE[dataTag.type];
    if (size === undefined) {
      throw new DatasetError(
        `variable '${name}' has unsupported data type ${dataTag.type}`,
        this.path,
      );
    }
    if (dataTag.nbytes !== count * size) {
      throw new DatasetError(
        `variable '${name}' has dimensions ${dims.join("x")} (${count} values) but its data ` +
          `holds ${dataTag.nbytes / size}`,
        this.path,
      );
    }
    let data: Uint8Array | Float64Array;
    if (dataTag.small) {
      data = dataTag.type === MI_UINT8
        ? dataTag.small.slice()
        : this.toFloat64(dataTag.small, dataTag.type);
    } else if (dataTag.type === MI_UINT8) {
      // The large case: bytes go from the (inflated) stream straight into place.
      data = new Uint8Array(dataTag.nbytes);
      await r.readInto(data);
      await r.skip(Math.min(pad8(dataTag.nbytes), end - r.position));
    } else {
      const raw = await r.read(dataTag.nbytes);
      await r.skip(Math.min(pad8(dataTag.nbytes), end - r.position));
      data = this.toFloat64(raw, dataTag.type);
    }
    await skipRest();
    return { name, className, dims, data };
  }
}

function pad8(n: number): number {
  return (8 - (n % 8)) % 8;
}

/** Reads and checks the 128-byte header; returns true for little-endian files. */
async function readHeader(r: ByteReader, path: string): Promise<boolean> {
  const h = await r.read(128);
  const text = new TextDecoder("latin1").decode(h.subarray(0, 116));
  const endian = String.fromCharCode(h[126], h[127]);
  if (!text.startsWith("MATLAB") || (endian !== "IM" && endian !== "MI")) {
    throw new DatasetError(`not a MAT v5 file (bad header)`, path);
  }
  const le = endian === "IM";
  const version = new DataView(h.buffer).getUint16(124, le);
  if (version !== 0x0100) {
    const hint = version === 0x0200 ? " (MAT v7.3 / HDF5 files are not supported)" : "";
    throw new DatasetError(`unsupported MAT version 0x${version.toString(16)}${hint}`, path);
  }
  return le;
}

/**
 * Reads the named numeric arrays from a MAT v5 file, streaming.
 *
 * @param path the .mat file
 * @param names the variables to read; others are skipped
 * @returns the variables found, by name (absent names are simply missing)
 * @throws DatasetError on a bad header, truncation, corrupt compressed data,
 *   or a wanted variable that is not a real numeric array
 */
export async function readMatV5(path: string, names: string[]): Promise<Map<string, MatArray>> {
  let r: ByteReader;
  try {
    r = await openFileReader(path);
  } catch (err) {
    throw new DatasetError(`cannot read file (${(err as Error).message})`, path);
  }
  const wanted = new Set(names);
  const found = new Map<string, MatArray>();
  try {
    const le = await readHeader(r, path);
    const p = new MatParser(path, le);
    while (found.size < wanted.size && !(await r.atEnd())) {
      const t = await p.tag(r);
      if (t.small) continue;
      if (t.type === MI_MATRIX) {
        const a = await p.matrix(r, t.nbytes, wanted);
        if (a) found.set(a.name, a);
        await r.skip(pad8(t.nbytes));
      } else if (t.type === MI_COMPRESSED) {
        const part = r.take(t.nbytes);
        const inner = new ByteReader(part.stream.pipeThrough(new DecompressionStream("deflate")));
        try {
          const it = await p.tag(inner);
          if (it.type === MI_MATRIX) {
            const a = await p.matrix(inner, it.nbytes, wanted);
            if (a) {
              // Draining the inflater verifies the zlib checksum of what we kept.
              if (!(await inner.atEnd())) {
                throw new DatasetError(`compressed element holds trailing data`, path);
              }
              found.set(a.name, a);
            }
          }
        } finally {
          await inner.cancel();
          await part.finish();
        }
      } else {
        await r.skip(t.nbytes + pad8(t.nbytes));
      }
    }
  } catch (err) {
    if (err instanceof DatasetError) throw err;
    if (err instanceof EndOfStreamError) {
      throw new DatasetError(`truncated MAT file (${err.message})`, path);
    }
    if (err instanceof TypeError) {
      throw new DatasetError(`corrupt compressed element (${err.message})`, path);
    }
    throw err;
  } finally {
    await r.cancel();
  }
  return found;
}
