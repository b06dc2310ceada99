/**
 * Tensors owned by the compute library, named here by handle.
 *
 * Data moves only through {@linkcode Tensor.fromF32}/{@linkcode Tensor.toF32}
 * and friends. Memory is released by {@linkcode Tensor.dispose}, by the end of
 * the {@linkcode tidy} scope that created the tensor, or (as a backstop) when
 * the garbage collector finalizes an unreachable Tensor.
 *
 * @module
 */
import { check, ComputeError, lastError, lib } from "./ffi.ts";
import { currentDevice, Device, DEVICE_CODE, DEVICE_OF_CODE } from "./device.ts";

export type DType = "f32" | "i32";
const DTYPE_CODE: Record<DType, number> = { f32: 0, i32: 1 };

const finalizer = new FinalizationRegistry<number>((handle) => lib.cm_free(handle));

/** Tensors created inside each open {@linkcode tidy} call, innermost last. */
const scopes: Set<Tensor>[] = [];

/** A handle to a tensor in the compute library. */
export class Tensor {
  #handle: number;
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Where the elements live. */
  readonly device: Device;

  /** Wraps a handle the library just returned; callers use the factories. */
  constructor(handle: number, shape: readonly number[], dtype: DType, device: Device = "cpu") {
    this.#handle = handle;
    this.shape = shape;
    this.dtype = dtype;
    this.device = device;
    finalizer.register(this, handle, this);
    scopes.at(-1)?.add(this);
  }

  /** The library handle; throws if the tensor was disposed. */
  get handle(): number {
    if (this.#handle === 0) throw new ComputeError("Tensor used after dispose()");
    return this.#handle;
  }

  get disposed(): boolean {
    return this.#handle === 0;
  }

  /** Number of elements. */
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** Uploads float32 data to the current device ({@linkcode useDevice}). */
  static fromF32(data: ArrayLike<number>, shape: readonly number[]): Tensor {
    const array = data instanceof Float32Array ? data : Float32Array.from(data);
    return upload("f32", new Uint8Array(array.buffer, array.byteOffset, array.byteLength), shape);
  }

  /** Uploads int32 data (labels, indices) to the current device. */
  static fromI32(data: ArrayLike<number>, shape: readonly number[]): Tensor {
    const array = data instanceof Int32Array ? data : Int32Array.from(data);
    return upload("i32", new Uint8Array(array.buffer, array.byteOffset, array.byteLength), shape);
  }

  /** Downloads the elements of an f32 tensor. */
  toF32(): Float32Array {
    this.#expect("f32");
    const out = new Float32Array(this.size);
    this.#download(new Uint8Array(out.buffer));
    return out;
  }

  /** Downloads the elements of an i32 tensor. */
  toI32(): Int32Array {
    this.#expect("i32");
    const out = new Int32Array(this.size);
    this.#download(new Uint8Array(out.buffer));
    return out;
  }

  /** The single element of a one-element f32 tensor. */
  item(): number {
    if (this.size !== 1) throw new RangeError(`item() needs one element, shape is [${this.shape}]`);
    return this.toF32()[0];
  }

  /** Keeps this tensor alive past the end of the enclosing {@linkcode tidy}. */
  keep(): this {
    for (const scope of scopes) scope.delete(this);
    return this;
  }

  /** Frees the native memory now. Safe to call twice. */
  dispose(): void {
    if (this.#handle === 0) return;
    finalizer.unregister(this);
    check(lib.cm_free(this.#handle), "dispose");
    this.#handle = 0;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(", ")}], ${this.device})`;
  }

  #expect(dtype: DType): void {
    if (this.dtype !== dtype) {
      throw new TypeError(`Expected a ${dtype} tensor, got ${this.dtype} ${this.toString()}`);
    }
  }

  #download(bytes: Uint8Array): void {
    check(lib.cm_download(this.handle, bytes, BigInt(bytes.byteLength)), "download");
  }
}

function upload(dtype: DType, bytes: Uint8Array, shape: readonly number[]): Tensor {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`Bad dimension ${d} in [${shape}]`);
  }
  const device = currentDevice();
  const handle = lib.cm_upload(
    DEVICE_CODE[device],
    DTYPE_CODE[dtype],
    bytes,
    BigInt(bytes.byteLength),
    Uint32Array.from(shape),
    shape.length,
  );
  if (handle === 0) throw new ComputeError(`upload: ${lastError()}`);
  return new Tensor(handle, [...shape], dtype, device);
}

/**
 * Wraps a handle from its info words `[dtype, device, ndim, dims...]` at
 * `offset` (as `cm_run` and `cm_info` write them); returns the tensor and the
 * offset past its words.
 */
export function adopt(handle: number, words: Uint32Array, offset = 0): [Tensor, number] {
  const ndim = words[offset + 2];
  const end = offset + 3 + ndim;
  const tensor = new Tensor(
    handle,
    Array.from(words.subarray(offset + 3, end)),
    words[offset] === 1 ? "i32" : "f32",
    DEVICE_OF_CODE[words[offset + 1]],
  );
  return [tensor, end];
}

function collect(value: unknown, into: Set<Tensor>): void {
  if (value instanceof Tensor) into.add(value);
  else if (Array.isArray(value)) value.forEach((v) => collect(v, into));
  else if (value !== null && typeof value === "object") {
    Object.values(value).forEach((v) => collect(v, into));
  }
}

/**
 * Runs `fn` and disposes every tensor it created, except those it returns
 * (directly, or inside arrays and plain objects) and those marked with
 * {@linkcode Tensor.keep}. Returned tensors move to the enclosing scope.
 * Tensors that a backward function saved are not "returned" by returning
 * its Var: run `backward` inside the same `tidy` as the forward.
 *
 * @example
 * ```ts ignore
 * const loss = tidy(() => model.forward(x).sum()); // intermediates freed
 * ```
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw err;
  }
  scopes.pop();
  const returned = new Set<Tensor>();
  collect(result, returned);
  for (const t of scope) {
    if (returned.has(t)) scopes.at(-1)?.add(t);
    else t.dispose();
  }
  return result;
}

/** Counters of the library's live allocations (`bytes`: host and device tensors). */
export function liveAllocations(): { tensors: number; bytes: number } {
  return { tensors: lib.cm_live_tensors(), bytes: lib.cm_live_bytes() };
}

/** Sets the CPU worker thread count (0: one per core). */
export function setThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 0) {
    throw new RangeError(`threads must be a whole number >= 0, got ${threads}`);
  }
  check(lib.cm_set_threads(threads), "setThreads");
}

/** The CPU worker thread count. */
export function threads(): number {
  return lib.cm_threads();
}

/** The SIMD level the CPU kernels run at: "avx512", "avx2" or "portable". */
export function simdLevel(): string {
  const buf = new Uint8Array(32);
  const n = check(lib.cm_simd_level(buf, 32n), "simdLevel");
  return new TextDecoder().decode(buf.subarray(0, n));
}

/**
 * Lowers (or restores) the CPU kernels' SIMD level for the rest of the
 * process: "avx512", "avx2" or "portable", never above what the CPU has.
 * `MACER_SIMD` sets the same at start-up.
 */
export function setSimd(level: string): void {
  const name = new TextEncoder().encode(level);
  check(lib.cm_set_simd(name, BigInt(name.length)), "setSimd");
}
