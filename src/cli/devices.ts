/**
 * `deno task devices`: the compute devices this build can use, one JSON line
 * each: the cpu (the SIMD level its kernels run at, the CPU's own, threads), then every GPU adapter, best first,
 * with what `--device auto` would choose.
 *
 * @module
 */
import { isHardware, listDevices } from "../../compute/device.ts";

/** Prints one JSON line per device. */
export function main(_args: string[]): Promise<number> {
  const [cpu, ...adapters] = listDevices();
  console.log(JSON.stringify({
    device: "cpu",
    simd: cpu.simd,
    simd_cpu: cpu.simd_cpu,
    simd_gemm: cpu.simd_gemm,
    threads: cpu.threads,
  }));
  if (cpu.simd_gemm !== cpu.simd) {
    console.error(
      `cpu: MACER_SIMD=${cpu.simd}, but the gemm crate's kernels (im2col convolutions, linear ` +
        `layers) run at ${cpu.simd_gemm}; build with --no-default-features for AVX2 GEMMs`,
    );
  }
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
