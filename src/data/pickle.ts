/**
 * A data-only reader for the small subset of Python's pickle format that the
 * CIFAR-10 python batches and PyTorch's state dicts use (protocol 2, as
 * written by Python 2's cPickle and by `torch.save`, plus what Python 3
 * writes for the same objects with protocols 2 to 4).
 *
 * Nothing is ever executed. Globals are accepted by profile, and interpreted
 * structurally, never called:
 * - `"numpy"` (the default): the four that describe a NumPy uint8 array and
 *   Python 3's bytes encoding (`numpy.core.multiarray._reconstruct`,
 *   `numpy.ndarray`, `numpy.dtype`, `_codecs.encode`);
 * - `"torch"`: what a state dict needs, as PyTorch's own `weights_only`
 *   loader allows (`collections.OrderedDict`,
 *   `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter` and
 *   the storage types `torch.FloatStorage`, `DoubleStorage`, `HalfStorage`,
 *   `LongStorage`, `IntStorage`), with persistent ids resolved by the caller.
 *
 * Any other opcode or global is refused with an error naming it.
 *
 * @module
 */

/** A Python `str`, kept as its UTF-8 bytes until text is needed. */
export class PyStr {
  constructor(readonly utf8: Uint8Array) {}
  /** The string's text. */
  toString(): string {
    return new TextDecoder().decode(this.utf8);
  }
}

/** A Python tuple. */
export class PyTuple {
  constructor(readonly items: PickleValue[]) {}
}

/** A NumPy array of unsigned bytes, rebuilt from its pickled state. */
export class PyNdarray {
  shape: number[] = [0];
  data: Uint8Array = new Uint8Array(0);
  dtype: PyDtype | undefined;
}

/** A NumPy dtype; only its type string is kept. */
export class PyDtype {
  constructor(readonly str: string) {}
}

/**
 * A PyTorch storage a persistent id refers to: its key in the file, element
 * type (the storage class's name, e.g. `torch.FloatStorage`) and element count,
 * plus, for a legacy view of a larger storage, where the view starts.
 */
export class PyStorage {
  constructor(
    readonly type: string,
    readonly key: string,
    readonly numel: number,
    readonly viewOffset = 0,
  ) {}
}

/**
 * A PyTorch tensor as `torch._utils._rebuild_tensor_v2` describes it: a strided
 * view (offset, shape and strides, in elements) into a storage whose bytes the
 * caller reads.
 */
export class PyTensorRef {
  constructor(
    readonly storage: PyStorage,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/** A whitelisted global reference (module and name). */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  /** "module.name". */
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** Any value this reader can produce. Python bytes are `Uint8Array`. */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | Uint8Array
  | PyStr
  | PyTuple
  | PickleValue[]
  | Map<string, PickleValue>
  | PyNdarray
  | PyDtype
  | PyGlobal
  | PyStorage
  | PyTensorRef;

/** A pickle that this reader refuses or cannot parse. */
export class PickleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PickleError";
  }
}

/** Which globals a pickle may name. */
export type PickleProfile = "numpy" | "torch";

/** The PyTorch storage types a state dict may use. */
export const TORCH_STORAGE_TYPES: readonly string[] = [
  "torch.FloatStorage",
  "torch.DoubleStorage",
  "torch.HalfStorage",
  "torch.LongStorage",
  "torch.IntStorage",
];

const ALLOWED_GLOBALS: Record<PickleProfile, Set<string>> = {
  numpy: new Set([
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.ndarray",
    "numpy.dtype",
    "_codecs.encode",
  ]),
  torch: new Set([
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    ...TORCH_STORAGE_TYPES,
  ]),
};

/** Options of {@linkcode readPickle}. */
export interface PickleOptions {
  /** The globals allowed (default `"numpy"`). */
  profile?: PickleProfile;
  /**
   * Resolves a persistent id (BINPERSID); without it a persistent id is refused.
   * Throw a {@linkcode PickleError} to refuse one.
   */
  persistentLoad?: (pid: PickleValue, at: number) => PickleValue;
}

const MARK = Symbol("mark");
type StackItem = PickleValue | typeof MARK;

const latin1 = new TextDecoder("latin1");

/** Dict keys become strings: bytes as latin-1, str as text. */
function keyOf(v: PickleValue, at: number): string {
  if (v instanceof Uint8Array) return latin1.decode(v);
  if (v instanceof PyStr) return v.toString();
  if (typeof v === "number" || typeof v === "bigint") return String(v);
  throw new PickleError(`unsupported dict key type at byte ${at}`);
}

/** Turns the UTF-8 bytes of a str whose code points are all < 256 into bytes. */
function utf8ToLatin1(s: PyStr, at: number): Uint8Array {
  const src = s.utf8;
  const out = new Uint8Array(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const b = src[i];
    if (b < 0x80) out[n++] = b;
    else if ((b === 0xc2 || b === 0xc3) && i + 1 < src.length) {
      out[n++] = ((b & 0x1f) << 6) | (src[++i] & 0x3f);
    } else {
      throw new PickleError(`latin1 encoding of a non-latin1 string at byte ${at}`);
    }
  }
  return out.slice(0, n);
}

function product(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The interpretation of REDUCE for the whitelisted callables. */
function reduce(fn: PickleValue, args: PickleValue, at: number): PickleValue {
  if (!(fn instanceof PyGlobal) || !(args instanceof PyTuple)) {
    throw new PickleError(`REDUCE on something other than an allowed global at byte ${at}`);
  }
  const a = args.items;
  switch (fn.qualified) {
    case "_codecs.encode": {
      const enc = a[1] instanceof PyStr ? a[1].toString() : "";
      if (!(a[0] instanceof PyStr) || (enc !== "latin1" && enc !== "latin-1")) {
        throw new PickleError(`unsupported _codecs.encode arguments at byte ${at}`);
      }
      return utf8ToLatin1(a[0], at);
    }
    case "numpy.core.multiarray._reconstruct":
    case "numpy._core.multiarray._reconstruct": {
      if (!(a[0] instanceof PyGlobal) || a[0].qualified !== "numpy.ndarray") {
        throw new PickleError(`_reconstruct of something other than numpy.ndarray at byte ${at}`);
      }
      return new PyNdarray();
    }
    case "numpy.dtype": {
      const s = a[0] instanceof PyStr
        ? a[0].toString()
        : a[0] instanceof Uint8Array
        ? latin1.decode(a[0])
        : undefined;
      if (s === undefined) throw new PickleError(`numpy.dtype without a type string at byte ${at}`);
      return new PyDtype(s);
    }
    case "collections.OrderedDict": {
      const dict = new Map<string, PickleValue>();
      const pairs = a.length === 0 ? [] : a[0];
      if (a.length > 1 || !Array.isArray(pairs)) {
        throw new PickleError(`unsupported OrderedDict arguments at byte ${at}`);
      }
      for (const kv of pairs) {
        if (!(kv instanceof PyTuple) || kv.items.length !== 2) {
          throw new PickleError(`OrderedDict item that is not a pair at byte ${at}`);
        }
        dict.set(keyOf(kv.items[0], at), kv.items[1]);
      }
      return dict;
    }
    case "torch._utils._rebuild_tensor_v2": {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      const [storage, offset, size, stride] = a;
      const ints = (t: PickleValue) =>
        t instanceof PyTuple && t.items.every((d) => Number.isSafeInteger(d) && (d as number) >= 0);
      if (
        a.length < 6 || a.length > 7 || !(storage instanceof PyStorage) ||
        !Number.isSafeInteger(offset) || (offset as number) < 0 || !ints(size) || !ints(stride) ||
        (size as PyTuple).items.length !== (stride as PyTuple).items.length
      ) {
        throw new PickleError(`unsupported _rebuild_tensor_v2 arguments at byte ${at}`);
      }
      return new PyTensorRef(
        storage,
        offset as number,
        (size as PyTuple).items as number[],
        (stride as PyTuple).items as number[],
      );
    }
    case "torch._utils._rebuild_parameter": {
      // (data, requires_grad, backward_hooks): the parameter's data is the tensor
      if (a.length !== 3 || !(a[0] instanceof PyTensorRef)) {
        throw new PickleError(`unsupported _rebuild_parameter arguments at byte ${at}`);
      }
      return a[0];
    }
    default:
      throw new PickleError(`refusing to call ${fn.qualified} at byte ${at}`);
  }
}

/** The interpretation of BUILD (setting an object's state). */
function build(obj: PickleValue, state: PickleValue, at: number): void {
  if (obj instanceof PyDtype) return; // byte order and flags: irrelevant for 1-byte types
  // An OrderedDict's instance attributes: a state dict's `_metadata` (module versions).
  if (obj instanceof Map && state instanceof Map) return;
  if (!(obj instanceof PyNdarray) || !(state instanceof PyTuple)) {
    throw new PickleError(`BUILD on an unsupported object at byte ${at}`);
  }
  // ndarray.__setstate__((version, shape, dtype, is_fortran, rawdata))
  const [_version, shape, dtype, fortran, raw] = state.items;
  if (!(shape instanceof PyTuple) || !shape.items.every((d) => typeof d === "number")) {
    throw new PickleError(`ndarray state without a shape at byte ${at}`);
  }
  if (!(dtype instanceof PyDtype) || !/^[|<>=]?u1$/.test(dtype.str)) {
    const what = dtype instanceof PyDtype ? dtype.str : "unknown";
    throw new PickleError(`ndarray of dtype ${what} is not supported (only uint8) at byte ${at}`);
  }
  if (fortran !== false && fortran !== 0) {
    throw new PickleError(`Fortran-ordered ndarray is not supported at byte ${at}`);
  }
  if (!(raw instanceof Uint8Array)) {
    throw new PickleError(`ndarray state without raw bytes at byte ${at}`);
  }
  obj.shape = shape.items as number[];
  obj.dtype = dtype;
  if (raw.length !== product(obj.shape)) {
    throw new PickleError(
      `ndarray data holds ${raw.length} bytes but its shape ${obj.shape.join("x")} needs ` +
        `${product(obj.shape)} at byte ${at}`,
    );
  }
  obj.data = raw;
}

/**
 * Parses a pickle made only of the supported opcodes and globals.
 *
 * @param bytes the pickle's bytes; large byte strings are returned as views
 *   into this buffer, not copies
 * @param options the globals allowed and the persistent-id resolver
 * @returns the unpickled value
 * @throws PickleError on an unsupported opcode or global, or truncation
 */
export function readPickle(bytes: Uint8Array, options: PickleOptions = {}): PickleValue {
  return readPickleAt(bytes, 0, options).value;
}

/**
 * Parses one pickle starting at byte `start` (files such as PyTorch's legacy
 * checkpoints hold several in a row).
 *
 * @param bytes the buffer
 * @param start where the pickle starts
 * @param options the globals allowed and the persistent-id resolver
 * @returns the value and the position just after its STOP opcode
 * @throws PickleError on an unsupported opcode or global, or truncation
 */
export function readPickleAt(
  bytes: Uint8Array,
  start: number,
  options: PickleOptions = {},
): { value: PickleValue; end: number } {
  const allowed = ALLOWED_GLOBALS[options.profile ?? "numpy"];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: StackItem[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();
  let p = start;

  const need = (n: number) => {
    if (p + n > bytes.length) {
      throw new PickleError(`truncated pickle: needs ${n} bytes at byte ${p} of ${bytes.length}`);
    }
  };
  const u8 = () => (need(1), bytes[p++]);
  const u16 = () => (need(2), p += 2, view.getUint16(p - 2, true));
  const u32 = () => (need(4), p += 4, view.getUint32(p - 4, true));
  const i32 = () => (need(4), p += 4, view.getInt32(p - 4, true));
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(p, true);
    p += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new PickleError(`length too large at ${p}`);
    return Number(v);
  };
  const slice = (n: number) => (need(n), p += n, bytes.subarray(p - n, p));
  const line = () => {
    const end = bytes.indexOf(0x0a, p);
    if (end < 0) throw new PickleError(`truncated pickle: unterminated line at byte ${p}`);
    const s = latin1.decode(bytes.subarray(p, end));
    p = end + 1;
    return s;
  };
  const pop = (): PickleValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) throw new PickleError(`stack underflow at byte ${p}`);
    return v;
  };
  const top = (): PickleValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) throw new PickleError(`stack underflow at byte ${p}`);
    return v;
  };
  const popMark = (): PickleValue[] => {
    const m = marks.pop();
    if (m === undefined) throw new PickleError(`no MARK before byte ${p}`);
    const items = stack.splice(m) as PickleValue[];
    items.shift(); // the MARK itself
    return items;
  };
  const global = (module: string, name: string, at: number): PyGlobal => {
    const g = new PyGlobal(module, name);
    if (!allowed.has(g.qualified)) {
      throw new PickleError(
        `refusing global ${g.qualified} at byte ${at} (only ${
          [...allowed].join(", ")
        } are allowed)`,
      );
    }
    return g;
  };
  const setItems = (dict: PickleValue, items: PickleValue[], at: number) => {
    if (!(dict instanceof Map)) throw new PickleError(`SETITEM on a non-dict at byte ${at}`);
    for (let i = 0; i + 1 < items.length; i += 2) dict.set(keyOf(items[i], at), items[i + 1]);
  };

  while (true) {
    const at = p;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 4) throw new PickleError(`unsupported pickle protocol at byte ${at}`);
        break;
      case 0x95: // FRAME: a length hint only
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) throw new PickleError(`malformed pickle: stack at STOP`);
        return { value: pop(), end: p };
      case 0x28: // MARK
        marks.push(stack.length);
        stack.push(MARK);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new PyTuple([]));
        break;
      case 0x74: // TUPLE
        stack.push(new PyTuple(popMark()));
        break;
      case 0x85: // TUPLE1
        stack.push(new PyTuple([pop()]));
        break;
      case 0x86: { // TUPLE2
        const b = pop();
        stack.push(new PyTuple([pop(), b]));
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop();
        const b = pop();
        stack.push(new PyTuple([pop(), b, c]));
        break;
      }
      case 0x61: { // APPEND
        const v = pop();
        const list = top();
        if (!Array.isArray(list)) throw new PickleError(`APPEND on a non-list at byte ${at}`);
        list.push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) throw new PickleError(`APPENDS on a non-list at byte ${at}`);
        for (const v of items) list.push(v);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v], at);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(top(), items, at);
        break;
      }
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x8a: { // LONG1: little-endian two's complement of n bytes
        const n = u8();
        const b = slice(n);
        if (n > 16) throw new PickleError(`integer too large at byte ${at}`);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = v * 256n + BigInt(b[i]);
        if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        const safe = v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER);
        stack.push(safe ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT: big-endian float64
        need(8);
        p += 8;
        stack.push(view.getFloat64(p - 8, false));
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x51: { // BINPERSID
        const pid = pop();
        if (options.persistentLoad === undefined) {
          throw new PickleError(`persistent id at byte ${at} without a storage to refer to`);
        }
        stack.push(options.persistentLoad(pid, at));
        break;
      }
      case 0x55: // SHORT_BINSTRING (Python 2 str: bytes)
      case 0x43: // SHORT_BINBYTES
        stack.push(slice(u8()));
        break;
      case 0x54: // BINSTRING
      case 0x42: // BINBYTES
        stack.push(slice(u32()));
        break;
      case 0x8e: // BINBYTES8
        stack.push(slice(u64()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(new PyStr(slice(u8())));
        break;
      case 0x58: // BINUNICODE
        stack.push(new PyStr(slice(u32())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(new PyStr(slice(u64())));
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const i = op === 0x68 ? u8() : u32();
        if (!memo.has(i)) throw new PickleError(`memo entry ${i} missing at byte ${at}`);
        stack.push(memo.get(i)!);
        break;
      }
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line();
        stack.push(global(module, line(), at));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (!(module instanceof PyStr) || !(name instanceof PyStr)) {
          throw new PickleError(`STACK_GLOBAL without strings at byte ${at}`);
        }
        stack.push(global(module.toString(), name.toString(), at));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        stack.push(reduce(pop(), args, at));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        build(top(), state, at);
        break;
      }
      default:
        throw new PickleError(
          `unsupported pickle opcode 0x${op.toString(16).padStart(2, "0")} at byte ${at}`,
        );
    }
  }
}
