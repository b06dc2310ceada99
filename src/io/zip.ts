/**
 * A reader for the zip archives `torch.save` writes (PyTorch >= 1.6): the end
 * of central directory record (and its Zip64 form), the central directory,
 * then each entry's local header and data, stored or deflated, checked
 * against its CRC-32. Everything is bounds-checked against the buffer, so a
 * truncated or malformed archive is a {@linkcode ZipError}, never a crash.
 *
 * @module
 */
import { crc32, inflateRawSync } from "node:zlib";

/** A malformed, truncated or unsupported zip archive. */
export class ZipError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ZipError";
  }
}

/** One entry of the central directory. */
export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  /** Offset of the entry's local header. */
  headerOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_EOCD = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/** True when `bytes` starts with a zip local file header. */
export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 3 &&
    bytes[3] === 4;
}

/** An opened archive: its entries by name, and their contents on demand. */
export class ZipArchive {
  readonly entries: Map<string, ZipEntry> = new Map();
  readonly #bytes: Uint8Array;
  readonly #view: DataView;

  /**
   * Reads the central directory of `bytes`.
   *
   * @throws {ZipError} when the archive is truncated or malformed
   */
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const v = this.#view;
    // The end record is in the last 22 + 65,535 bytes (its comment is at most 64 KiB).
    let eocd = -1;
    for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
      if (v.getUint32(i, true) === EOCD) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) {
      throw new ZipError(
        "no end of central directory record (the archive is truncated or not a zip file)",
      );
    }
    let count = v.getUint16(eocd + 10, true);
    let dirSize = v.getUint32(eocd + 12, true);
    let dirOffset = v.getUint32(eocd + 16, true);
    if (eocd >= 20 && v.getUint32(eocd - 20, true) === ZIP64_LOCATOR) {
      const at = this.#u64(eocd - 20 + 8);
      this.#need(at, 56, "Zip64 end of central directory");
      if (v.getUint32(at, true) !== ZIP64_EOCD) {
        throw new ZipError("bad Zip64 end of central directory record");
      }
      count = this.#u64(at + 32);
      dirSize = this.#u64(at + 40);
      dirOffset = this.#u64(at + 48);
    }
    this.#need(dirOffset, dirSize, "central directory");
    let p = dirOffset;
    for (let i = 0; i < count; i++) {
      this.#need(p, 46, "central directory");
      if (v.getUint32(p, true) !== CENTRAL) {
        throw new ZipError(`bad central directory entry ${i} at byte ${p}`);
      }
      const flags = v.getUint16(p + 8, true);
      const method = v.getUint16(p + 10, true);
      const crc = v.getUint32(p + 16, true);
      let compressedSize = v.getUint32(p + 20, true);
      let size = v.getUint32(p + 24, true);
      const nameLen = v.getUint16(p + 28, true);
      const extraLen = v.getUint16(p + 30, true);
      const commentLen = v.getUint16(p + 32, true);
      let headerOffset = v.getUint32(p + 42, true);
      this.#need(p + 46, nameLen + extraLen + commentLen, "central directory");
      const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLen));
      // Zip64 extended information: the 64-bit values of the fields set to 0xffffffff, in order.
      let e = p + 46 + nameLen;
      const extraEnd = e + extraLen;
      while (e + 4 <= extraEnd) {
        const id = v.getUint16(e, true);
        const len = v.getUint16(e + 2, true);
        if (id === 1) {
          let q = e + 4;
          const next = () => {
            if (q + 8 > e + 4 + len) throw new ZipError(`bad Zip64 field of "${name}"`);
            q += 8;
            return this.#u64(q - 8);
          };
          if (size === 0xffffffff) size = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (headerOffset === 0xffffffff) headerOffset = next();
        }
        e += 4 + len;
      }
      if (flags & 1) throw new ZipError(`"${name}" is encrypted`);
      this.entries.set(name, { name, method, crc, compressedSize, size, headerOffset });
      p = extraEnd + commentLen;
    }
  }

  #u64(at: number): number {
    this.#need(at, 8, "Zip64 field");
    const x = this.#view.getBigUint64(at, true);
    if (x > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipError(`value too large at byte ${at}`);
    return Number(x);
  }

  #need(at: number, n: number, what: string): void {
    if (at < 0 || n < 0 || at + n > this.#bytes.length) {
      throw new ZipError(
        `${what} at byte ${at} runs past the end of the ${this.#bytes.length}-byte archive ` +
          `(the file is truncated)`,
      );
    }
  }

  /**
   * The contents of entry `name` (a view into the archive for stored entries).
   *
   * @throws {ZipError} for a missing, truncated, corrupt or unsupported entry
   */
  read(name: string): Uint8Array {
    const e = this.entries.get(name);
    if (e === undefined) throw new ZipError(`the archive has no entry "${name}"`);
    const v = this.#view;
    this.#need(e.headerOffset, 30, `local header of "${name}"`);
    if (v.getUint32(e.headerOffset, true) !== LOCAL) {
      throw new ZipError(`bad local header of "${name}" at byte ${e.headerOffset}`);
    }
    const start = e.headerOffset + 30 + v.getUint16(e.headerOffset + 26, true) +
      v.getUint16(e.headerOffset + 28, true);
    this.#need(start, e.compressedSize, `data of "${name}"`);
    const raw = this.#bytes.subarray(start, start + e.compressedSize);
    let data: Uint8Array;
    if (e.method === 0) {
      if (e.compressedSize !== e.size) {
        throw new ZipError(`stored entry "${name}" has two different sizes`);
      }
      data = raw;
    } else if (e.method === 8) {
      try {
        data = inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
      } catch (err) {
        throw new ZipError(`cannot inflate "${name}": ${(err as Error).message}`);
      }
      if (data.length !== e.size) {
        throw new ZipError(`"${name}" inflates to ${data.length} bytes, expected ${e.size}`);
      }
    } else {
      throw new ZipError(`"${name}" uses compression method ${e.method} (only 0 and 8 are read)`);
    }
    if ((crc32(data) >>> 0) !== e.crc) throw new ZipError(`"${name}" fails its CRC-32 check`);
    return data;
  }
}
