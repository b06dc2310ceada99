/**
 * The IDX format of MNIST and Fashion-MNIST: a big-endian header (magic
 * `0x0000 08 <ndim>`, then one uint32 per dimension) followed by uint8 data.
 *
 * @module
 */
import { DatasetError } from "./errors.ts";
import { readMaybeGzip } from "./_files.ts";

/** A parsed IDX array of unsigned bytes. */
export interface IdxArray {
  /** Dimensions from the header, outermost first. */
  dims: number[];
  /** The payload, row-major, exactly `product(dims)` bytes. */
  data: Uint8Array;
}

/**
 * Parses an IDX file of uint8 data (type code 0x08).
 *
 * @param bytes the file's bytes, already gunzipped
 * @param path the file name, used in error messages
 * @param ndim the number of dimensions expected (1 for labels, 3 for images)
 * @returns the dimensions and a view of the payload
 * @throws DatasetError on a wrong magic number, a size mismatch or truncation
 */
export function parseIdx(bytes: Uint8Array, path: string, ndim: number): IdxArray {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4) throw new DatasetError("file too short for an IDX header", path);
  const magic = view.getUint32(0, false);
  const expected = 0x0800 | ndim;
  if (magic !== expected) {
    throw new DatasetError(
      `wrong IDX magic number 0x${magic.toString(16).padStart(8, "0")} ` +
        `(expected 0x${expected.toString(16).padStart(8, "0")}: uint8 data, ${ndim} dimensions)`,
      path,
    );
  }
  const header = 4 + 4 * ndim;
  if (bytes.length < header) throw new DatasetError("truncated IDX header", path);
  const dims: number[] = [];
  let size = 1;
  for (let i = 0; i < ndim; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    size *= d;
  }
  if (bytes.length - header !== size) {
    const what = bytes.length - header < size ? "truncated" : "has trailing bytes";
    throw new DatasetError(
      `IDX file ${what}: header says ${dims.join("x")} = ${size} bytes, ` +
        `file holds ${bytes.length - header}`,
      path,
    );
  }
  return { dims, data: bytes.subarray(header) };
}

/**
 * Reads an IDX file, gzipped or not.
 *
 * @param path the file to read
 * @param ndim the number of dimensions expected
 */
export async function readIdxFile(path: string, ndim: number): Promise<IdxArray> {
  return parseIdx(await readMaybeGzip(path), path, ndim);
}
