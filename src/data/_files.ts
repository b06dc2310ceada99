/**
 * Small file helpers shared by the format readers.
 *
 * @module
 */
import { gunzipSync } from "node:zlib";
import { DatasetError } from "./errors.ts";

/** True when `path` exists and is a regular file. */
export async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/** True when `path` exists and is a folder. */
export async function isDir(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/** Joins path parts with "/", dropping a trailing slash on `root`. */
export function joinPath(root: string, ...parts: string[]): string {
  return [root.replace(/\/+$/, "") || "/", ...parts].join("/");
}

/** Reads a whole file, turning "not found" and the like into a DatasetError. */
export async function readFileOrThrow(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (err) {
    throw new DatasetError(`cannot read file (${(err as Error).message})`, path);
  }
}

/** Reads a file and gunzips it when it starts with the gzip magic bytes. */
export async function readMaybeGzip(path: string): Promise<Uint8Array> {
  const raw = await readFileOrThrow(path);
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      // node:zlib's one-shot gunzip is native and several times faster than a
      // DecompressionStream pipeline for files of tens of megabytes.
      const out = gunzipSync(raw);
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    } catch (err) {
      throw new DatasetError(`corrupt or truncated gzip data (${(err as Error).message})`, path);
    }
  }
  return raw;
}
