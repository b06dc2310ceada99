/**
 * Crash-safe file replacement: a reader sees either the old file or the complete new one,
 * never a partial write.
 *
 * @module
 */

/** Index of the last path separator (either kind), or -1. */
function lastSep(path: string): number {
  return Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
}

function parentDir(path: string): string {
  const slash = lastSep(path);
  return slash > 0 ? path.slice(0, slash) : slash === 0 ? path.slice(0, 1) : ".";
}

function siblingTemp(path: string): string {
  const slash = lastSep(path);
  const dir = slash >= 0 ? path.slice(0, slash + 1) : "";
  const base = slash >= 0 ? path.slice(slash + 1) : path;
  if (base === "") throw new RangeError(`Not a file path: ${path}`);
  const tag = `${Deno.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  // Same directory, so the final rename never crosses a filesystem.
  return `${dir}.${base}.tmp-${tag}`;
}

async function syncDir(path: string): Promise<void> {
  try {
    using d = await Deno.open(parentDir(path), { read: true });
    await d.sync(); // makes the rename itself durable
  } catch {
    // Some platforms cannot open or fsync a directory; the data itself is already synced.
  }
}

/**
 * Writes `bytes` to `path` atomically: a temporary file in the same directory is written,
 * fsynced and renamed over `path`, then the directory is fsynced.
 *
 * @param path destination file
 * @param bytes full contents
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeFileAtomic } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/a.txt`, new TextEncoder().encode("hi"));
 * assert.ok(await Deno.readTextFile(`${dir}/a.txt`) === "hi");
 * ```
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = siblingTemp(path);
  try {
    {
      using f = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
      let off = 0;
      while (off < bytes.length) off += await f.write(bytes.subarray(off));
      await f.sync();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  await syncDir(path);
}

/**
 * Synchronous {@linkcode writeFileAtomic}.
 *
 * @param path destination file
 * @param bytes full contents
 */
export function writeFileAtomicSync(path: string, bytes: Uint8Array): void {
  const tmp = siblingTemp(path);
  try {
    {
      using f = Deno.openSync(tmp, { write: true, createNew: true, mode: 0o644 });
      let off = 0;
      while (off < bytes.length) off += f.writeSync(bytes.subarray(off));
      f.syncSync();
    }
    Deno.renameSync(tmp, path);
  } catch (e) {
    try {
      Deno.removeSync(tmp);
    } catch { /* already gone */ }
    throw e;
  }
  try {
    using d = Deno.openSync(parentDir(path), { read: true });
    d.syncSync();
  } catch { /* see syncDir */ }
}
