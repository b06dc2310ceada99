/**
 * The PyTorch checkpoint reader on the committed files of tests/fixtures/pth/
 * (written by scripts/fixtures/make_pth_fixtures.py with PyTorch 1.13): both
 * torch.save formats, every dtype, strided views, the MACER and Cohen
 * containers, and hostile or broken files.
 */
import assert from "node:assert/strict";
import { PickleError, readPickle } from "../../src/data/pickle.ts";
import { readTorchCheckpoint, TorchError } from "../../src/io/torch.ts";

const dir = new URL("../fixtures/pth/", import.meta.url).pathname;
const read = (name: string) => Deno.readFileSync(dir + name);
const expected: Record<string, { shape: number[]; int: boolean; values: number[] }> = JSON.parse(
  Deno.readTextFileSync(dir + "tiny.json"),
);

for (const [file, format] of [["tiny_zip.pth", "zip"], ["tiny_legacy.pth", "legacy"]] as const) {
  Deno.test(`readTorchCheckpoint() reads ${format}-format tensors with PyTorch's values`, () => {
    const c = readTorchCheckpoint(read(file));
    assert.equal(c.format, format);
    assert.equal(c.container, "state_dict");
    assert.deepEqual(Object.keys(c.tensors), Object.keys(expected));
    for (const [name, want] of Object.entries(expected)) {
      const t = c.tensors[name];
      assert.deepEqual(t.shape, want.shape, name);
      assert.equal(t.dtype, want.int ? "I64" : "F32", name);
      const got = Array.from(t.data as ArrayLike<number | bigint>);
      // Integers exactly; floats as float32 (float64 and float16 are converted).
      const ref = want.int ? want.values.map(BigInt) : want.values.map(Math.fround);
      assert.deepEqual(got, ref, name);
    }
  });
}

Deno.test("readTorchCheckpoint() finds MACER's {net, epoch} with DataParallel names", () => {
  const c = readTorchCheckpoint(read("macer_tiny.pth"));
  assert.equal(c.container, "macer");
  assert.equal(c.epoch, 2);
  assert.deepEqual(Object.keys(c.tensors), [
    "module.fc.weight",
    "module.fc.bias",
    "module.bn.weight",
    "module.bn.bias",
    "module.bn.running_mean",
    "module.bn.running_var",
    "module.bn.num_batches_tracked",
  ]);
  assert.deepEqual(Array.from(c.tensors["module.bn.running_mean"].data as Float32Array), [
    0.25,
    0.25,
  ]);
  assert.deepEqual(c.tensors["module.bn.num_batches_tracked"].data, new BigInt64Array([5n]));
});

Deno.test("readTorchCheckpoint() reads Cohen's legacy {epoch, arch, state_dict, optimizer}", () => {
  const c = readTorchCheckpoint(read("cohen_tiny.pth.tar"));
  assert.equal(c.format, "legacy");
  assert.equal(c.container, "cohen");
  assert.equal(c.epoch, 3);
  assert.equal(c.arch, "cifar_resnet20");
  assert.ok(Object.keys(c.tensors).every((k) => k.startsWith("1.")));
  assert.ok(!Object.keys(c.tensors).some((k) => k.includes("momentum")));
});

const refused: [string, RegExp][] = [
  ["os_system.pth", /refusing global os\.system at byte 2/],
  ["legacy_os_system.pth.tar", /refusing global posix\.system/],
  ["eval_zip.pth", /refusing global __builtin__\.eval/],
  ["truncated_zip.pth", /truncated/],
  ["truncated_legacy.pth", /truncated/],
  ["missing_storage.pth", /storage "tiny_zip\/data\/0" is missing from the archive/],
  ["neither.pth", /neither a zip archive nor a pickle/],
];
for (const [file, message] of refused) {
  Deno.test(`readTorchCheckpoint() refuses ${file}`, () => {
    assert.throws(() => readTorchCheckpoint(read(file)), (e: Error) => {
      assert.ok(e instanceof TorchError, `${e.name}: ${e.message}`);
      assert.match(e.message, message);
      return true;
    });
  });
}

Deno.test("readTorchCheckpoint() refuses a state dict cut anywhere, with a TorchError", () => {
  for (const file of ["tiny_zip.pth", "tiny_legacy.pth", "cohen_tiny.pth.tar"]) {
    const whole = read(file);
    for (let n = 0; n < whole.length; n += 7) {
      assert.throws(() => readTorchCheckpoint(whole.subarray(0, n)), TorchError, `${file} ${n}`);
    }
  }
});

Deno.test("readPickle() keeps the numpy profile free of PyTorch's globals", () => {
  // GLOBAL collections.OrderedDict, EMPTY_TUPLE, REDUCE, STOP
  const pkl = new Uint8Array([
    0x80,
    2,
    ...new TextEncoder().encode("ccollections\nOrderedDict\n"),
    0x29,
    0x52,
    0x2e,
  ]);
  assert.throws(() => readPickle(pkl), PickleError);
  assert.ok(readPickle(pkl, { profile: "torch" }) instanceof Map);
});

Deno.test("readPickle() refuses to call an allowed storage type", () => {
  const pkl = new Uint8Array([
    0x80,
    2,
    ...new TextEncoder().encode("ctorch\nFloatStorage\n"),
    0x29,
    0x52,
    0x2e,
  ]);
  assert.throws(
    () => readPickle(pkl, { profile: "torch" }),
    /refusing to call torch\.FloatStorage/,
  );
});
