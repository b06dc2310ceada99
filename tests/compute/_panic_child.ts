/**
 * Run as a child process by `panic_test.ts` with `MACER_COMPUTE_TEST_OPS=1`:
 * makes the library panic on the op's thread and on the pool's workers, then
 * keeps using it, and prints what it saw as one JSON line.
 *
 * @module
 */
import { ComputeError } from "../../compute/ffi.ts";
import * as ops from "../../compute/ops.ts";
import { liveAllocations, setThreads, Tensor } from "../../compute/tensor.ts";

setThreads(2);
const t = Tensor.fromF32(Float32Array.from([5, 6, 7]), [3]).keep();
const live = liveAllocations();
const errors = [];
for (const where of [0, 1, 0]) {
  try {
    ops.run("debug_panic", [t], [where]);
    errors.push({ where, thrown: null });
  } catch (e) {
    errors.push({
      where,
      thrown: (e as Error).name,
      computeError: e instanceof ComputeError,
      message: (e as Error).message,
    });
  }
}
// The in-place input is still live (with the op's partial write), and the library still computes.
const after = [...t.toF32()];
const sum = ops.run("add", [t, t])[0];
console.log(JSON.stringify({
  errors,
  after,
  sum: [...sum.toF32()],
  liveBefore: live.tensors,
  liveAfter: liveAllocations().tensors - 1,
}));
