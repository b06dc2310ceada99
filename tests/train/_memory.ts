/**
 * A native-memory flatness check that tolerates other test modules running in
 * the same process (`deno test --parallel` shares the compute library): a leak
 * grows memory on every attempt, concurrent work only on some.
 */
import { liveAllocations } from "../../compute/tensor.ts";

/**
 * Runs `work` repeatedly and returns true as soon as one run leaves no more
 * live tensors and bytes than it found.
 */
export async function staysFlat(work: () => unknown, attempts = 8): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    const before = liveAllocations();
    await work();
    const after = liveAllocations();
    if (after.tensors <= before.tensors && after.bytes <= before.bytes) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}
