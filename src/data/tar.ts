/**
 * A minimal streaming reader for (gzipped) tar archives: regular files only,
 * enough to unpack CIFAR-10's tarball. Entry names are returned as written;
 * the caller decides which to keep and where, so nothing outside the target
 * folder can be written.
 *
 * @module
 */
import { ByteReader } from "./_byte_reader.ts";

/** One regular file in the archive. */
export interface TarEntry {
  /** Path inside the archive ("dir/file"). */
  name: string;
  size: number;
}

const latin1 = new TextDecoder("latin1");

function field(h: Uint8Array, at: number, len: number): string {
  const b = h.subarray(at, at + len);
  const end = b.indexOf(0);
  return latin1.decode(end < 0 ? b : b.subarray(0, end));
}

function octal(h: Uint8Array, at: number, len: number): number {
  const s = field(h, at, len).trim();
  if (!/^[0-7]*$/.test(s)) throw new Error(`bad tar size field "${s}"`);
  return s === "" ? 0 : parseInt(s, 8);
}

/**
 * Walks a tar stream, calling `onFile` for each regular file with a reader
 * positioned at its data (the callback must consume exactly `entry.size`
 * bytes, or return false to have them skipped).
 *
 * @param r the (already decompressed) archive
 * @param onFile called per regular file; return false to skip its data
 */
export async function walkTar(
  r: ByteReader,
  onFile: (entry: TarEntry, r: ByteReader) => Promise<boolean>,
): Promise<void> {
  while (true) {
    const h = await r.read(512);
    if (h.every((b) => b === 0)) return; // end-of-archive marker
    const size = octal(h, 124, 12);
    const type = String.fromCharCode(h[156]);
    const prefix = field(h, 345, 155);
    const base = field(h, 0, 100);
    const name = prefix ? `${prefix}/${base}` : base;
    const padding = (512 - (size % 512)) % 512;
    if (type === "0" || type === "\0") {
      const consumed = await onFile({ name, size }, r);
      if (!consumed) await r.skip(size);
    } else {
      await r.skip(size); // directories, links, pax and GNU headers: not needed
    }
    await r.skip(padding);
  }
}

/** Opens a .tar.gz file as a decompressed `ByteReader`. */
export async function openTarGz(path: string): Promise<ByteReader> {
  const file = await Deno.open(path, { read: true });
  return new ByteReader(file.readable.pipeThrough(new DecompressionStream("gzip")));
}
