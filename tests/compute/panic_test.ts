/**
 * The FFI boundary turns a Rust panic into a ComputeError: the process goes
 * on, the op's in-place inputs stay live, and the library stays usable. The
 * panicking op exists only with `MACER_COMPUTE_TEST_OPS=1`, so it runs in a
 * child process (a panic that crossed the boundary would abort that process).
 */
import assert from "node:assert/strict";
import { ComputeError } from "../../compute/ffi.ts";
import * as ops from "../../compute/ops.ts";
import { Tensor } from "../../compute/tensor.ts";

const child = new URL("./_panic_child.ts", import.meta.url).pathname;

Deno.test("a Rust panic in an op becomes a ComputeError and the process goes on", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", child],
    env: { MACER_COMPUTE_TEST_OPS: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.equal(out.signal, null);
  const r = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(r.errors.length, 3);
  for (const e of r.errors) {
    assert.equal(e.thrown, "ComputeError", JSON.stringify(e));
    assert.equal(e.computeError, true);
  }
  assert.equal(
    r.errors[0].message,
    "internal error (panic): debug_panic: deliberate panic on the op's thread",
  );
  assert.match(
    r.errors[1].message,
    /^internal error \(panic\): debug_panic: deliberate panic in a parallel loop \(item \d+\)$/,
  );
  assert.equal(r.errors[2].message, r.errors[0].message);
  assert.deepEqual(r.after, [1, 6, 7]);
  assert.deepEqual(r.sum, [2, 12, 14]);
  assert.equal(r.liveAfter, r.liveBefore);
  // Rust's panic hook reports each panic on stderr; nothing else went wrong.
  assert.match(stderr, /deliberate panic on the op's thread/);
  assert.doesNotMatch(stderr, /abort|SIGABRT|Uncaught/i);
});

Deno.test("the panicking test op is unknown unless MACER_COMPUTE_TEST_OPS=1", () => {
  if (Deno.env.get("MACER_COMPUTE_TEST_OPS") === "1") Deno.env.delete("MACER_COMPUTE_TEST_OPS");
  const t = Tensor.fromF32(Float32Array.from([5]), [1]);
  try {
    assert.throws(
      () => ops.run("debug_panic", [t], [0]),
      (e: unknown) => e instanceof ComputeError && /unknown op 'debug_panic'/.test(e.message),
    );
    assert.deepEqual([...t.toF32()], [5]);
  } finally {
    t.dispose();
  }
});
