/**
 * PyTorch checkpoints (`torch.save` files: `.pth`, `.pth.tar`) read as data,
 * never run: both formats `torch.save` has written.
 *
 * - **zip** (PyTorch >= 1.6): an archive `<name>/data.pkl` (the pickled
 *   object), `<name>/data/<key>` (each storage's raw bytes), `<name>/byteorder`
 *   and `<name>/version`.
 * - **legacy** (the 2019-2020 releases): five things one after another: a
 *   pickled magic number, the protocol version (1001), the system info
 *   (byte order, type sizes), the pickled object, the pickled list of storage
 *   keys, then for each key its element count (8 bytes) and raw bytes.
 *
 * The object is unpickled with the `"torch"` profile of the data-only
 * unpickler (`src/data/pickle.ts`): dicts, lists, numbers, strings, ordered
 * dicts and tensors, nothing else. Tensors are strided views into storages
 * (offset and strides honoured); float32, float64 and float16 storages become
 * float32, int64 and int32 storages int64.
 *
 * Containers as the randomized-smoothing repositories save them: MACER's
 * `{net, epoch}`, Cohen et al.'s `{epoch, arch, state_dict, optimizer}` (the
 * optimizer's entries are parsed as data and left unused), and plain state
 * dicts.
 *
 * @module
 */
import {
  PickleError,
  type PickleValue,
  PyGlobal,
  PyStorage,
  PyStr,
  PyTensorRef,
  PyTuple,
  readPickleAt,
  TORCH_STORAGE_TYPES,
} from "../data/pickle.ts";
import type { Tensor } from "./safetensors.ts";
import { isZip, ZipArchive, ZipError } from "./zip.ts";

/** A PyTorch checkpoint that cannot be read: malformed, truncated, hostile or unsupported. */
export class TorchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TorchError";
  }
}

/** The two serialisations of `torch.save`. */
export type TorchFormat = "zip" | "legacy";

/** Where the state dict sat in the file. */
export type TorchContainer = "macer" | "cohen" | "state_dict";

/** What {@linkcode readTorchCheckpoint} found. */
export interface TorchCheckpoint {
  format: TorchFormat;
  container: TorchContainer;
  /** The state dict's tensors by their names in the file (float32 or int64). */
  tensors: Record<string, Tensor>;
  /** The container's `epoch`, when it has one. */
  epoch?: number;
  /** The container's `arch` (Cohen et al.'s architecture name), when it has one. */
  arch?: string;
}

/** Value of the legacy format's first pickle. */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

const ELEMENT: Record<string, { bytes: number; kind: "f32" | "f64" | "f16" | "i64" | "i32" }> = {
  "torch.FloatStorage": { bytes: 4, kind: "f32" },
  "torch.DoubleStorage": { bytes: 8, kind: "f64" },
  "torch.HalfStorage": { bytes: 2, kind: "f16" },
  "torch.LongStorage": { bytes: 8, kind: "i64" },
  "torch.IntStorage": { bytes: 4, kind: "i32" },
};
if (Object.keys(ELEMENT).join() !== TORCH_STORAGE_TYPES.join()) {
  throw new Error("torch.ts: storage types differ from pickle.ts");
}

/** True when `bytes` starts like a pickle of protocol 2 to 5 (the legacy format). */
export function isPickle(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5;
}

/** True when `bytes` looks like a file `torch.save` wrote (zip or legacy). */
export function isTorchFile(bytes: Uint8Array): boolean {
  return isZip(bytes) || isPickle(bytes);
}

/** A Python str (or a Python 2 byte string) as text. */
function str(v: PickleValue): string | undefined {
  if (v instanceof PyStr) return v.toString();
  if (v instanceof Uint8Array) return new TextDecoder("latin1").decode(v);
  return undefined;
}

/** Checks a persistent id's common part: `('storage', StorageType, key, location, numel, ...)`. */
function storageId(pid: PickleValue, at: number): { type: string; key: string; numel: number } {
  const items = pid instanceof PyTuple ? pid.items : [];
  const [tag, type, key, location, numel] = items;
  if (str(tag) !== "storage" || str(location) === undefined) {
    throw new PickleError(`unsupported persistent id at byte ${at} (expected a storage)`);
  }
  if (!(type instanceof PyGlobal) || !(type.qualified in ELEMENT)) {
    throw new PickleError(`unsupported storage type at byte ${at}`);
  }
  const k = str(key) ?? (typeof key === "number" ? String(key) : undefined);
  if (k === undefined || !/^[0-9A-Za-z_]{1,64}$/.test(k)) {
    throw new PickleError(`storage key at byte ${at} is not a plain name`);
  }
  if (!Number.isSafeInteger(numel) || (numel as number) < 0) {
    throw new PickleError(`storage size at byte ${at} is not a count`);
  }
  return { type: type.qualified, key: k, numel: numel as number };
}

/** Raw bytes of each storage by key, with its type. */
type Storages = Map<string, { type: string; numel: number; bytes?: Uint8Array }>;

function readZip(bytes: Uint8Array): { root: PickleValue; storages: Storages } {
  const zip = new ZipArchive(bytes);
  const pkl = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkl.length !== 1) {
    throw new TorchError(
      `a zip archive without exactly one <name>/data.pkl entry (found ${pkl.length}): ` +
        `not a checkpoint torch.save wrote`,
    );
  }
  const prefix = pkl[0].slice(0, -"data.pkl".length);
  if (zip.entries.has(prefix + "byteorder")) {
    const order = new TextDecoder().decode(zip.read(prefix + "byteorder")).trim();
    if (order !== "little") throw new TorchError(`byte order "${order}" is not supported`);
  }
  const storages: Storages = new Map();
  const root = readPickleAt(zip.read(pkl[0]), 0, {
    profile: "torch",
    persistentLoad(pid, at) {
      const { type, key, numel } = storageId(pid, at);
      const known = storages.get(key);
      if (known && (known.type !== type || known.numel !== numel)) {
        throw new PickleError(`storage ${key} is used with two different types or sizes`);
      }
      storages.set(key, { type, numel });
      return new PyStorage(type, key, numel);
    },
  }).value;
  for (const [key, s] of storages) {
    const name = `${prefix}data/${key}`;
    if (!zip.entries.has(name)) {
      throw new TorchError(`storage "${name}" is missing from the archive`);
    }
    const data = zip.read(name);
    const need = s.numel * ELEMENT[s.type].bytes;
    if (data.length < need) {
      throw new TorchError(
        `storage "${name}" holds ${data.length} bytes, its ${s.numel} elements need ${need}`,
      );
    }
    s.bytes = data;
  }
  return { root, storages };
}

function readLegacy(bytes: Uint8Array): { root: PickleValue; storages: Storages } {
  const opts = { profile: "torch" as const };
  const magic = readPickleAt(bytes, 0, opts);
  if (magic.value !== LEGACY_MAGIC) {
    throw new TorchError(
      "a pickle that does not start with torch.save's magic number: not a PyTorch checkpoint",
    );
  }
  const proto = readPickleAt(bytes, magic.end, opts);
  if (proto.value !== LEGACY_PROTOCOL) {
    throw new TorchError(`legacy protocol version ${String(proto.value)} (expected 1001)`);
  }
  const info = readPickleAt(bytes, proto.end, opts);
  if (!(info.value instanceof Map) || info.value.get("little_endian") !== true) {
    throw new TorchError("the checkpoint was written on a big-endian machine (not supported)");
  }
  const storages: Storages = new Map();
  const views: { key: string; root: string; offset: number; numel: number }[] = [];
  const obj = readPickleAt(bytes, info.end, {
    profile: "torch",
    persistentLoad(pid, at) {
      const { type, key, numel } = storageId(pid, at);
      const view = (pid as PyTuple).items[5];
      const known = storages.get(key);
      if (known && (known.type !== type || known.numel !== numel)) {
        throw new PickleError(`storage ${key} is used with two different types or sizes`);
      }
      storages.set(key, { type, numel });
      if (view === undefined || view === null) return new PyStorage(type, key, numel);
      // (view_key, offset, view_size): a view of the root storage `key`.
      const [vk, off, size] = view instanceof PyTuple ? view.items : [];
      if (
        str(vk) === undefined || !Number.isSafeInteger(off) || !Number.isSafeInteger(size) ||
        (off as number) < 0 || (size as number) < 0 || (off as number) + (size as number) > numel
      ) {
        throw new PickleError(`unsupported storage view at byte ${at}`);
      }
      views.push({ key: str(vk)!, root: key, offset: off as number, numel: size as number });
      return new PyStorage(type, key, numel, off as number);
    },
  });
  const keys = readPickleAt(bytes, obj.end, opts);
  if (!Array.isArray(keys.value) || !keys.value.every((k) => str(k) !== undefined)) {
    throw new TorchError("the list of storage keys after the object is malformed");
  }
  let p = keys.end;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const k of keys.value.map((k) => str(k)!)) {
    const s = storages.get(k);
    if (s === undefined) throw new TorchError(`storage ${k} is listed but no tensor uses it`);
    if (p + 8 > bytes.length) {
      throw new TorchError(
        `storage ${k} starts past the end of the ${bytes.length}-byte file (the file is truncated)`,
      );
    }
    const count = view.getBigInt64(p, true);
    if (count !== BigInt(s.numel)) {
      throw new TorchError(`storage ${k} holds ${count} elements, its tensors say ${s.numel}`);
    }
    const n = s.numel * ELEMENT[s.type].bytes;
    if (p + 8 + n > bytes.length) {
      throw new TorchError(
        `storage ${k} needs ${n} bytes at byte ${p + 8} of the ${bytes.length}-byte file ` +
          `(the file is truncated)`,
      );
    }
    s.bytes = bytes.subarray(p + 8, p + 8 + n);
    p += 8 + n;
  }
  for (const [k, s] of storages) {
    if (s.bytes === undefined) throw new TorchError(`storage ${k} is missing from the file`);
  }
  return { root: obj.value, storages };
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Gathers a strided view into a contiguous float32 or int64 tensor. */
function materialize(t: PyTensorRef, storages: Storages, name: string): Tensor {
  const s = storages.get(t.storage.key)!;
  const el = ELEMENT[s.type];
  const base = t.storage.viewOffset + t.offset;
  let count = 1;
  let last = base;
  for (let d = 0; d < t.shape.length; d++) {
    count *= t.shape[d];
    if (t.shape[d] > 0) last += (t.shape[d] - 1) * t.stride[d];
  }
  if (!Number.isSafeInteger(count) || (count > 0 && last >= s.numel)) {
    throw new TorchError(
      `tensor "${name}" (shape [${t.shape}], stride [${t.stride}], offset ${base}) reaches ` +
        `past its storage of ${s.numel} elements`,
    );
  }
  const v = new DataView(s.bytes!.buffer, s.bytes!.byteOffset, s.bytes!.byteLength);
  const read = (i: number): number | bigint => {
    const at = i * el.bytes;
    switch (el.kind) {
      case "f32":
        return v.getFloat32(at, true);
      case "f64":
        return v.getFloat64(at, true);
      case "f16":
        return halfToFloat(v.getUint16(at, true));
      case "i64":
        return v.getBigInt64(at, true);
      case "i32":
        return BigInt(v.getInt32(at, true));
    }
  };
  const isInt = el.kind === "i64" || el.kind === "i32";
  const out = isInt ? new BigInt64Array(count) : new Float32Array(count);
  const idx = new Array(t.shape.length).fill(0);
  let src = base;
  for (let i = 0; i < count; i++) {
    (out as unknown as (number | bigint)[])[i] = read(src);
    for (let d = t.shape.length - 1; d >= 0; d--) {
      idx[d]++;
      src += t.stride[d];
      if (idx[d] < t.shape[d]) break;
      src -= idx[d] * t.stride[d];
      idx[d] = 0;
    }
  }
  return { dtype: isInt ? "I64" : "F32", shape: [...t.shape], data: out };
}

function describe(v: PickleValue): string {
  if (v instanceof Map) return `a dict with keys ${[...v.keys()].slice(0, 8).join(", ")}`;
  if (v instanceof PyTensorRef) return "a single tensor";
  if (Array.isArray(v)) return "a list";
  return `a ${typeof v}`;
}

function isStateDict(v: PickleValue): v is Map<string, PickleValue> {
  return v instanceof Map && v.size > 0 && [...v.values()].every((x) => x instanceof PyTensorRef);
}

/**
 * Reads a `torch.save` file's state dict, running nothing.
 *
 * @param bytes the whole file
 * @returns the format, the container, the tensors and the container's epoch and arch
 * @throws {TorchError} for a truncated, malformed, hostile or unsupported file (the message names
 *   the problem, not the file)
 */
export function readTorchCheckpoint(bytes: Uint8Array): TorchCheckpoint {
  let format: TorchFormat;
  let parsed: { root: PickleValue; storages: Storages };
  try {
    if (isZip(bytes)) {
      format = "zip";
      parsed = readZip(bytes);
    } else if (isPickle(bytes)) {
      format = "legacy";
      parsed = readLegacy(bytes);
    } else {
      throw new TorchError("not a file torch.save wrote (neither a zip archive nor a pickle)");
    }
  } catch (e) {
    if (e instanceof PickleError || e instanceof ZipError) throw new TorchError(e.message);
    throw e;
  }
  const root = parsed.root;
  let container: TorchContainer;
  let dict: Map<string, PickleValue>;
  let epoch: number | undefined;
  let arch: string | undefined;
  if (isStateDict(root)) {
    container = "state_dict";
    dict = root;
  } else if (root instanceof Map && isStateDict(root.get("net") ?? null)) {
    container = "macer";
    dict = root.get("net") as Map<string, PickleValue>;
  } else if (root instanceof Map && isStateDict(root.get("state_dict") ?? null)) {
    container = "cohen";
    dict = root.get("state_dict") as Map<string, PickleValue>;
    arch = str(root.get("arch") ?? null);
  } else {
    throw new TorchError(
      `it holds ${describe(root)}, not a state dict (expected a dict of tensors, ` +
        `{net, epoch} as MACER saves or {epoch, arch, state_dict, optimizer} as Cohen et al. save)`,
    );
  }
  if (root instanceof Map && Number.isSafeInteger(root.get("epoch"))) {
    epoch = root.get("epoch") as number;
  }
  const tensors: Record<string, Tensor> = {};
  for (const [name, t] of dict) {
    tensors[name] = materialize(t as PyTensorRef, parsed.storages, name);
  }
  return { format, container, tensors, epoch, arch };
}
