/**
 * Running one test body on the cpu and on the gpu. The gpu is any adapter,
 * Mesa's software one included (CI installs it): without one these tests are
 * ignored with the reason, except under CI=true, where they fail.
 */
import { type Device, listDevices, useDevice } from "../../compute/device.ts";

/** Why gpu tests cannot run here, or undefined when an adapter exists. */
export function noGpuReason(): string | undefined {
  if (listDevices().length > 1) return undefined;
  return "no GPU adapter (install mesa-vulkan-drivers for Mesa's software one)";
}

/** Ignore a gpu test only outside CI, where a missing adapter is a failure. */
export const ignoreGpu = noGpuReason() !== undefined && Deno.env.get("CI") !== "true";

/** Runs `fn` with new tensors on `device`, then puts the cpu back. */
export async function on<T>(device: Device, fn: () => T | Promise<T>): Promise<T> {
  useDevice(device);
  try {
    return await fn();
  } finally {
    useDevice("cpu");
  }
}

/** Largest |a - b| / (1 + |a|): a relative difference that tolerates values near 0. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`lengths ${a.length} and ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) / (1 + Math.abs(a[i]));
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  return worst;
}
