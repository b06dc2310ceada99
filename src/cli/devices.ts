/**
 * `deno task devices`: the compute devices this build can use, one JSON line
 * each: the cpu (SIMD level, threads), then every GPU adapter, best first,
 * with what `--device auto` would choose.
 *
 * @module
 */
import { isHardware, listDevices } from "../../compute/device.ts";

/** Prints one JSON line per device. */
export function main(_args: string[]): Promise<number> {
  const [cpu, ...adapters] = listDevices();
  console.log(JSON.stringify({ device: "cpu", simd: cpu.simd, threads: cpu.threads }));
  for (const a of adapters) {
    console.log(JSON.stringify({
      device: "gpu",
      name: a.name,
      backend: a.backend,
      device_type: a.device_type,
      driver: a.driver,
      auto: isHardware(a),
    }));
  }
  if (adapters.length === 0) {
    console.error("gpu: no adapter found (Vulkan, Metal or DX12); --device gpu will fail");
  } else if (!adapters.some(isHardware)) {
    console.error(
      "gpu: software adapters only: --device auto uses the cpu, --device gpu the first",
    );
  }
  return Promise.resolve(0);
}
