/**
 * Which compute device new tensors go to, and what devices there are.
 *
 * A program chooses once ({@linkcode useDevice}); every upload and every op
 * without tensor inputs (`full`, `randn`) then lands there, and ops run where
 * their inputs live, so no code above `compute/` branches on the device.
 *
 * @module
 */
import { check, ComputeError, lastError, lib } from "./ffi.ts";

/** Where a tensor lives. */
export type Device = "cpu" | "gpu";
/** What a user asks for: `auto` is a real GPU if there is one, else the cpu. */
export type DeviceChoice = Device | "auto";

/** The device codes of the library's C ABI. */
export const DEVICE_CODE: Record<Device, number> = { cpu: 0, gpu: 1 };
export const DEVICE_OF_CODE: readonly Device[] = ["cpu", "gpu"];

/** The cpu device as the library lists it. */
export interface CpuInfo {
  kind: "cpu";
  /** The level the kernels run at (`MACER_SIMD` may lower it). */
  simd: string;
  /** The highest level this CPU has. */
  simd_cpu: string;
  /** The level of the gemm crate's kernels, which follow the CPU, not `MACER_SIMD`. */
  simd_gemm: string;
  threads: number;
}

/** A GPU adapter as the library lists it. */
export interface AdapterInfo {
  kind: "gpu";
  name: string;
  backend: string;
  /** "discrete", "integrated", "virtual", "other" or "cpu" (a software rasteriser). */
  device_type: string;
  driver: string;
}

let current: Device = "cpu";

/** The device new tensors go to. */
export function currentDevice(): Device {
  return current;
}

/** The cpu device, then every GPU adapter, best first. */
export function listDevices(): [CpuInfo, ...AdapterInfo[]] {
  let buffer = new Uint8Array(4096);
  let n = Number(lib.cm_devices(buffer, BigInt(buffer.length)));
  if (n > buffer.length) {
    buffer = new Uint8Array(n);
    n = Number(lib.cm_devices(buffer, BigInt(buffer.length)));
  }
  return JSON.parse(new TextDecoder().decode(buffer.subarray(0, n)));
}

/** The CPU kernels' SIMD levels, highest first. */
export const SIMD_LEVELS = ["avx512", "avx2", "portable"] as const;

/** The SIMD levels this CPU can run the kernels at (`MACER_SIMD`, `setSimd`), highest first. */
export function cpuSimdLevels(): string[] {
  const cpu = listDevices()[0].simd_cpu;
  return SIMD_LEVELS.slice(Math.max(0, SIMD_LEVELS.indexOf(cpu as typeof SIMD_LEVELS[number])));
}

/** True for an adapter that is real hardware, not a software rasteriser. */
export function isHardware(adapter: AdapterInfo): boolean {
  return adapter.device_type !== "cpu";
}

/** The device chosen and, for the gpu, the adapter's name. */
export interface DeviceSelection {
  device: Device;
  adapter?: string;
}

/**
 * Makes `choice` the device of new tensors. `gpu` opens the best adapter,
 * software ones included, and fails with the adapters looked for when there
 * is none; `auto` takes the gpu only when a hardware adapter exists.
 */
export function useDevice(choice: DeviceChoice): DeviceSelection {
  if (choice === "cpu") {
    current = "cpu";
    return { device: "cpu" };
  }
  if (choice === "auto" && !listDevices().slice(1).some((a) => isHardware(a as AdapterInfo))) {
    current = "cpu";
    return { device: "cpu" };
  }
  const buffer = new Uint8Array(512);
  const n = Number(lib.cm_gpu_open(buffer, BigInt(buffer.length)));
  if (n < 0) throw new ComputeError(`--device ${choice}: ${lastError()}`);
  current = "gpu";
  return { device: "gpu", adapter: new TextDecoder().decode(buffer.subarray(0, n)) };
}

/** Parses a device choice, naming what was expected. */
export function parseDeviceChoice(value: string, where = "device"): DeviceChoice {
  if (value === "cpu" || value === "gpu" || value === "auto") return value;
  throw new RangeError(`${where}: expected cpu, gpu or auto, got '${value}'`);
}

/** Waits until the gpu has finished the work queued so far (for timings). */
export function sync(): void {
  check(lib.cm_sync(), "sync");
}

/** Bytes of device memory the gpu context holds, pooled or in use. */
export function gpuBytes(): number {
  return lib.cm_gpu_bytes();
}
