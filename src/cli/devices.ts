/**
 * `deno task devices`: the compute devices this build can use.
 *
 * @module
 */
import { simdLevel, threads } from "../../compute/tensor.ts";

/** Prints one JSON line per device. */
export function main(_args: string[]): Promise<number> {
  console.log(JSON.stringify({ device: "cpu", threads: threads(), simd: simdLevel() }));
  console.error("gpu: not available in this build (the wgpu device is not implemented yet)");
  return Promise.resolve(0);
}
