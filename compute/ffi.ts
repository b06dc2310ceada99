/**
 * The one `Deno.dlopen` site: the C ABI of the Rust library in `compute/src/ffi.rs`.
 *
 * Written by hand rather than with deno_bindgen: its 0.8 CLI calls `Deno.run`,
 * which Deno 2 removed, and its 0.9 alpha needs a nightly macro crate. A typed
 * table is short, and every symbol uses fast-call types (numbers and buffers).
 *
 * Set `MACER_COMPUTE_LIB` to load the library from another path.
 *
 * @module
 */

import { ComputeSetupError } from "./setup_error.ts";

const symbols = {
  /** (buf: *mut u8, cap: usize) -> usize: last error message length */
  cm_last_error: { parameters: ["buffer", "usize"], result: "usize" },
  /**
   * (device: u32, dtype: u32, data: *const u8, nbytes: usize, shape: *const u32, ndim: u32)
   *   -> handle or 0
   */
  cm_upload: { parameters: ["u32", "u32", "buffer", "usize", "buffer", "u32"], result: "u32" },
  /** (handle: u32, out: *mut u8, nbytes: usize) -> 0 or -1 */
  cm_download: { parameters: ["u32", "buffer", "usize"], result: "i32" },
  /** (handle: u32) -> 0 or -1 */
  cm_free: { parameters: ["u32"], result: "i32" },
  /**
   * (name: *const u8, name_len: usize, inputs: *const u32, n_in: u32,
   *  params: *const f64, n_params: u32, device: u32, outputs: *mut u32, max_out: u32,
   *  infos: *mut u32 [dtype, device, ndim, dims...]..., infos_cap: u32) -> n_out or -1
   */
  cm_run: {
    parameters: [
      "buffer",
      "usize",
      "buffer",
      "u32",
      "buffer",
      "u32",
      "u32",
      "buffer",
      "u32",
      "buffer",
      "u32",
    ],
    result: "i32",
  },
  /** (threads: u32; 0 = one per core) -> 0 */
  cm_set_threads: { parameters: ["u32"], result: "i32" },
  /** () -> worker thread count */
  cm_threads: { parameters: [], result: "u32" },
  /** () -> live tensor count */
  cm_live_tensors: { parameters: [], result: "u32" },
  /** () -> bytes held by live tensors */
  cm_live_bytes: { parameters: [], result: "f64" },
  /** (buf: *mut u8, cap: usize) -> length of the level's name, or -1 (bad MACER_SIMD) */
  cm_simd_level: { parameters: ["buffer", "usize"], result: "i32" },
  /** (name: *const u8, len: usize) -> 0 or -1 */
  cm_set_simd: { parameters: ["buffer", "usize"], result: "i32" },
  /** (buf: *mut u8, cap: usize) -> length of the devices' JSON list */
  cm_devices: { parameters: ["buffer", "usize"], result: "usize" },
  /** (buf: *mut u8, cap: usize) -> length of the opened adapter's name, or -1 */
  cm_gpu_open: { parameters: ["buffer", "usize"], result: "i64" },
  /** () -> 0 or -1: waits for the GPU's queued work */
  cm_sync: { parameters: [], result: "i32" },
  /** () -> bytes of device memory the GPU context holds */
  cm_gpu_bytes: { parameters: [], result: "f64" },
} as const;

function libraryPath(): string {
  const override = Deno.env.get("MACER_COMPUTE_LIB");
  if (override) return override;
  const file = Deno.build.os === "windows"
    ? "macer_compute.dll"
    : Deno.build.os === "darwin"
    ? "libmacer_compute.dylib"
    : "libmacer_compute.so";
  return new URL(`./target/release/${file}`, import.meta.url).pathname;
}

function open(): Deno.DynamicLibrary<typeof symbols> {
  const path = libraryPath();
  try {
    return Deno.dlopen(path, symbols);
  } catch (err) {
    throw new ComputeSetupError(
      `Cannot load the compute library at ${path}: build it with \`deno task build\` ` +
        `(or set MACER_COMPUTE_LIB). Cause: ${(err as Error).message}`,
    );
  }
}

/** The loaded library's symbols. */
export const lib: Deno.DynamicLibrary<typeof symbols>["symbols"] = open().symbols;

/** An error reported by the compute library (bad shape, dtype, handle, parameter). */
export class ComputeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ComputeError";
  }
}

const errorBuffer = new Uint8Array(4096);

/** The library's message for the last failed call. */
export function lastError(): string {
  const n = Number(lib.cm_last_error(errorBuffer, BigInt(errorBuffer.length)));
  return new TextDecoder().decode(errorBuffer.subarray(0, Math.min(n, errorBuffer.length)));
}

/** Throws a {@linkcode ComputeError} when a status says the call failed. */
export function check(status: number, what?: string): number {
  if (status < 0) throw new ComputeError(what ? `${what}: ${lastError()}` : lastError());
  return status;
}

// A MACER_SIMD that names no level, or one this CPU lacks, fails the library's
// first use with the reason, rather than running at another level than asked.
if (lib.cm_simd_level(new Uint8Array(32), 32n) < 0) throw new ComputeSetupError(lastError());
