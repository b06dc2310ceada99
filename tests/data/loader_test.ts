import assert from "node:assert/strict";
import {
  type Batch,
  BatchLoader,
  cropFlipInto,
  drawCropFlip,
  imageAt,
  type ImageDataset,
  summarize,
} from "../../src/data/mod.ts";
import { patternBytes } from "./_helpers.ts";

function fakeDataset(
  name: ImageDataset["name"],
  count: number,
  c: number,
  hw: number,
): ImageDataset {
  return {
    name,
    split: "train",
    count,
    channels: c,
    height: hw,
    width: hw,
    classes: 10,
    images: patternBytes(count * c * hw * hw, 5),
    labels: Uint8Array.from({ length: count }, (_, i) => i % 10),
  };
}

const cifar = fakeDataset("cifar10", 37, 3, 32);
const mnist = fakeDataset("mnist", 37, 1, 28);

function collect(loader: BatchLoader, epoch: number): Batch[] {
  return [...loader.epoch(epoch)];
}

Deno.test("BatchLoader gives the same batches for the same seed and epoch", () => {
  const opts = { batchSize: 8, shuffle: true, augment: true, seed: 42 };
  const a = collect(new BatchLoader(cifar, opts), 3);
  const b = collect(new BatchLoader(cifar, opts), 3);
  assert.equal(a.length, 5);
  assert.deepEqual(a, b);
});

Deno.test("BatchLoader reproduces an epoch on its own, as a resumed run does", () => {
  const opts = { batchSize: 8, shuffle: true, augment: true, seed: 7 };
  const long = new BatchLoader(cifar, opts);
  collect(long, 0);
  collect(long, 1);
  const third = collect(long, 2);
  assert.deepEqual(collect(new BatchLoader(cifar, opts), 2), third);
});

Deno.test("BatchLoader changes the order between epochs and seeds", () => {
  const order = (seed: number, epoch: number) =>
    collect(
      new BatchLoader(cifar, { batchSize: 37, shuffle: true, augment: false, seed }),
      epoch,
    )[0]
      .indices.join();
  assert.notEqual(order(1, 0), order(1, 1));
  assert.notEqual(order(1, 0), order(2, 0));
  const idx = order(1, 0).split(",").map(Number).sort((a, b) => a - b);
  assert.deepEqual(idx, Array.from({ length: 37 }, (_, i) => i));
});

Deno.test("BatchLoader keeps dataset order without shuffle and scales to [0, 1]", () => {
  const [b0, b1] = collect(
    new BatchLoader(mnist, { batchSize: 20, shuffle: false, augment: false, seed: 0 }),
    0,
  );
  assert.deepEqual([...b0.indices], Array.from({ length: 20 }, (_, i) => i));
  assert.equal(b1.size, 17);
  assert.equal(b1.x.length, 17 * 784);
  assert.deepEqual([...b1.y], [...mnist.labels.subarray(20)]);
  assert.deepEqual(b0.x.subarray(784, 2 * 784), imageAt(mnist, 1));
  assert.equal(b0.x[5], Math.fround(mnist.images[5] / 255));
});

Deno.test("BatchLoader does not augment MNIST-like datasets", () => {
  const plain = collect(
    new BatchLoader(mnist, { batchSize: 16, shuffle: true, augment: false, seed: 3 }),
    0,
  );
  const aug = collect(
    new BatchLoader(mnist, { batchSize: 16, shuffle: true, augment: true, seed: 3 }),
    0,
  );
  assert.deepEqual(aug, plain);
});

Deno.test("BatchLoader drops the last short batch only when asked", () => {
  const keep = new BatchLoader(cifar, { batchSize: 10, shuffle: false, augment: false, seed: 0 });
  const drop = new BatchLoader(cifar, {
    batchSize: 10,
    shuffle: false,
    augment: false,
    seed: 0,
    dropLast: true,
  });
  assert.equal(keep.batchesPerEpoch, 4);
  assert.equal(drop.batchesPerEpoch, 3);
  assert.deepEqual(collect(drop, 0).map((b) => b.size), [10, 10, 10]);
});

Deno.test("BatchLoader replays a given order per epoch and refuses one that is no permutation", () => {
  const reversed = Int32Array.from({ length: 37 }, (_, i) => 36 - i);
  const loader = new BatchLoader(mnist, {
    batchSize: 8,
    shuffle: true,
    augment: false,
    seed: 1,
    orders: (e) => (e === 1 ? reversed : reversed.slice(1)),
  });
  const indices = collect(loader, 1).flatMap((b) => [...b.indices]);
  assert.deepEqual(indices, [...reversed]);
  const first = collect(loader, 1)[0];
  assert.deepEqual([...first.y], [...reversed.slice(0, 8)].map((i) => mnist.labels[i]));
  assert.throws(() => collect(loader, 2), /epoch 2 is not a permutation of 0\.\.36/);
  const doubled = new BatchLoader(mnist, {
    batchSize: 8,
    shuffle: true,
    augment: false,
    seed: 1,
    orders: () => reversed.map((i) => (i === 0 ? 1 : i)),
  });
  assert.throws(() => collect(doubled, 1), /not a permutation/);
});

Deno.test("BatchLoader rejects a bad batch size", () => {
  assert.throws(
    () => new BatchLoader(cifar, { batchSize: 0, shuffle: false, augment: false, seed: 0 }),
    RangeError,
  );
});

Deno.test("BatchLoader augments CIFAR-10 with crops and flips of the original pixels", () => {
  const loader = new BatchLoader(cifar, { batchSize: 37, shuffle: false, augment: true, seed: 9 });
  const [batch] = collect(loader, 0);
  let changed = 0;
  for (let i = 0; i < 37; i++) {
    const img = batch.x.subarray(i * 3072, (i + 1) * 3072);
    const orig = imageAt(cifar, i);
    if (img.some((v, k) => v !== orig[k])) changed++;
    // Every non-zero output value is some pixel of the original.
    const values = new Set(orig);
    assert.ok(img.every((v) => v === 0 || values.has(v)));
  }
  assert.ok(changed > 30, `only ${changed} of 37 images changed`);
});

Deno.test("cropFlipInto() shifts, zero-pads and mirrors as specified", () => {
  // One 1-channel 3x3 image with padding 1: values 1..9 row-major.
  const src = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const out = new Float32Array(9);
  cropFlipInto(src, 0, out, 0, 1, 3, 3, { dy: 0, dx: 2, flip: false }, 1);
  // Window starts one row above and one column right: row -1 is zeros.
  assert.deepEqual([...out].map((v) => Math.round(v * 255)), [0, 0, 0, 2, 3, 0, 5, 6, 0]);
  cropFlipInto(src, 0, out, 0, 1, 3, 3, { dy: 1, dx: 1, flip: true }, 1);
  assert.deepEqual([...out].map((v) => Math.round(v * 255)), [3, 2, 1, 6, 5, 4, 9, 8, 7]);
  let k = 0;
  const draws = [0.99, 0, 0.7];
  assert.deepEqual(drawCropFlip(() => draws[k++]), { dy: 8, dx: 0, flip: false });
});

Deno.test("summarize() counts labels and pixel statistics in [0, 1]", () => {
  const ds: ImageDataset = {
    name: "mnist",
    split: "test",
    count: 2,
    channels: 1,
    height: 1,
    width: 2,
    classes: 10,
    images: Uint8Array.from([0, 255, 51, 102]),
    labels: Uint8Array.from([3, 3]),
  };
  const s = summarize(ds);
  assert.deepEqual(s.shape, [2, 1, 1, 2]);
  assert.deepEqual(s.label_counts, [0, 0, 0, 2, 0, 0, 0, 0, 0, 0]);
  assert.equal(s.min, 0);
  assert.equal(s.max, 1);
  assert.ok(Math.abs(s.mean - 0.4) < 1e-12);
  assert.throws(() => imageAt(ds, 2), RangeError);
});
