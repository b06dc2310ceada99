/**
 * The engine-backed noise sampler used by certification.
 */
import assert from "node:assert/strict";
import { LeNet } from "../../src/nn/lenet.ts";
import { drawSpan, EngineSampler } from "../../src/smoothing/sampler.ts";
import { certify, certifyBoth } from "../../src/smoothing/certify.ts";
import { formulaInput } from "../nn/_formula.ts";
import { staysFlat } from "./_memory.ts";

const image = formulaInput(784);
const opts = { sigma: 0.25, beta: 16, seed: 5 };

Deno.test("EngineSampler.sample() counts every copy and is reproducible from (seed, offset)", () => {
  const model = new LeNet(1);
  const a = new EngineSampler(model, image, [1, 28, 28], opts);
  const s1 = a.sample(100, 30);
  assert.equal(s1.counts.reduce((x, y) => x + y, 0), 100);
  assert.ok(Math.abs(s1.softSum.reduce((x, y) => x + y, 0) - 100) < 1e-3);
  for (let j = 0; j < 10; j++) assert.ok(s1.softSumSq[j] <= s1.softSum[j] + 1e-9);
  assert.equal(a.offset, drawSpan(100, 30, 784));
  // The next draw uses fresh noise.
  const s2 = a.sample(100, 30);
  assert.notDeepEqual(Array.from(s2.softSum), Array.from(s1.softSum));
  // The same (seed, offset) gives the same statistics; batching does not change the noise.
  const b = new EngineSampler(model, image, [1, 28, 28], { ...opts, offset: 0 });
  const again = b.sample(100, 50);
  assert.deepEqual(Array.from(again.counts), Array.from(s1.counts));
  for (let j = 0; j < 10; j++) assert.ok(Math.abs(again.softSum[j] - s1.softSum[j]) < 1e-4);
  // Hard-only skips the soft statistics.
  const h = new EngineSampler(model, image, [1, 28, 28], { ...opts, hardOnly: true }).sample(
    40,
    40,
  );
  assert.equal(h.counts.reduce((x, y) => x + y, 0), 40);
  assert.equal(h.softSum.reduce((x, y) => x + y, 0), 0);
});

Deno.test("EngineSampler keeps native memory flat across draws", async () => {
  const model = new LeNet(2);
  const sampler = new EngineSampler(model, image, [1, 28, 28], opts);
  sampler.sample(64, 32);
  const flat = await staysFlat(async () => {
    for (let i = 0; i < 3; i++) sampler.sample(64, 32);
    await certify(sampler, "hard", { n0: 10, n: 50, alpha: 0.001, batch: 20, sigma: 0.25 });
    await certifyBoth(sampler, { n0: 10, n: 50, alpha: 0.001, batch: 20, sigma: 0.25 });
  });
  assert.ok(flat, "native memory grew");
});

Deno.test("EngineSampler rejects bad arguments", () => {
  const model = new LeNet(0);
  assert.throws(() => new EngineSampler(model, image, [1, 28, 27], opts), RangeError);
  assert.throws(
    () => new EngineSampler(model, image, [1, 28, 28], { ...opts, offset: 6 }),
    RangeError,
  );
  const s = new EngineSampler(model, image, [1, 28, 28], opts);
  assert.throws(() => s.sample(10, 0), RangeError);
  const empty = s.sample(0, 10);
  assert.equal(empty.counts.length, 10);
});
