/**
 * A native-memory flatness check. `deno task test` runs test modules one after
 * another in one process, so while a test runs only its own work allocates
 * native tensors: a run of `work` that leaves more live tensors or bytes than
 * it found has leaked, however rarely it does so. (Under `deno test --parallel`
 * other modules' tensors share the counters, and this check may blame them.)
 */
import { liveAllocations } from "../../compute/tensor.ts";

/**
 * Runs `work` `runs` times in a row (after the caller's warm-up run) and returns
 * true when no run left more live tensors or bytes than it found, so a leak that
 * happens on one run only fails as surely as one on every run.
 */
export async function staysFlat(work: () => unknown, runs = 8): Promise<boolean> {
  let flat = true;
  for (let i = 0; i < runs; i++) {
    const before = liveAllocations();
    await work();
    const after = liveAllocations();
    if (after.tensors > before.tensors || after.bytes > before.bytes) flat = false;
  }
  return flat;
}
