import assert from "node:assert/strict";
import {
  parseSafetensors,
  readSafetensors,
  SafetensorsError,
  serializeSafetensors,
  type Tensor,
  writeSafetensors,
} from "../../src/io/safetensors.ts";
import { python, pythonHas, runPython, testNeeding } from "../_tools.ts";

const sample: Record<string, Tensor> = {
  "layer1.0.bn1.running_mean": { dtype: "F32", shape: [3], data: new Float32Array([0.5, -1, 2]) },
  "conv.weight": { dtype: "F64", shape: [2, 2], data: new Float64Array([1, 2, 3, 4]) },
  "epoch": { dtype: "I64", shape: [], data: new BigInt64Array([440n]) },
  "idx": { dtype: "I32", shape: [2, 1], data: new Int32Array([-7, 9]) },
  "mask": { dtype: "U8", shape: [5], data: new Uint8Array([1, 0, 255, 3, 4]) },
  "empty": { dtype: "F32", shape: [0, 3], data: new Float32Array(0) },
  "rng.state": { dtype: "U32", shape: [4], data: new Uint32Array([1, 2, 3, 0xffffffff]) },
  "half": { dtype: "BF16", shape: [1], data: new Uint16Array([0x3f80]) },
};

Deno.test("writeSafetensors() and readSafetensors() round-trip every dtype and metadata", async () => {
  const path = `${await Deno.makeTempDir()}/ckpt.safetensors`;
  await writeSafetensors(path, sample, { format: "pt", epoch: "440" });
  const back = await readSafetensors(path);
  assert.deepEqual(back.metadata, { format: "pt", epoch: "440" });
  assert.deepEqual(Object.keys(back.tensors).sort(), Object.keys(sample).sort());
  for (const [name, t] of Object.entries(sample)) assert.deepEqual(back.tensors[name], t, name);
  assert.deepEqual(parseSafetensors(await Deno.readFile(path)), back);
});

Deno.test("serializeSafetensors() aligns the data and every tensor to its element size", () => {
  const bytes = serializeSafetensors(sample);
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + n) % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  for (const [name, t] of Object.entries(sample)) {
    const [begin] = header[name].data_offsets;
    assert.equal(begin % t.data.BYTES_PER_ELEMENT, 0, name);
  }
  assert.equal(header.__metadata__, undefined);
});

Deno.test("serializeSafetensors() rejects inconsistent tensors", () => {
  const bad = (t: Partial<Tensor> & Record<string, unknown>) => () =>
    serializeSafetensors({
      x: { dtype: "F32", shape: [2], data: new Float32Array(2), ...t } as Tensor,
    });
  assert.throws(bad({ shape: [3] }), SafetensorsError);
  assert.throws(bad({ data: new Float64Array(2) }), /must be a Float32Array/);
  assert.throws(bad({ dtype: "F128" as "F32" }), /unknown dtype/);
  assert.throws(bad({ shape: [-2] }), SafetensorsError);
  assert.throws(
    () =>
      serializeSafetensors({ __metadata__: { dtype: "U8", shape: [0], data: new Uint8Array(0) } }),
    /reserved/,
  );
});

/** Builds a file from a header (object or raw text) and data, optionally lying about the length. */
function build(header: unknown, data = new Uint8Array(0), length?: bigint): Uint8Array {
  const h = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

const t = (dtype: string, shape: number[], offs: number[]) => ({
  dtype,
  shape,
  data_offsets: offs,
});

Deno.test("readSafetensors() refuses hostile files with SafetensorsError", async () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ["short file", new Uint8Array(5), /shorter than the 8-byte header length/],
    ["length past end", build({}, new Uint8Array(0), 1000n), /runs past the end/],
    ["length 2^64-1", build({}, new Uint8Array(0), 0xffffffffffffffffn), /runs past the end/],
    ["tiny header", build("", new Uint8Array(0)), /too small/],
    ["not JSON", build("{not json"), /not valid UTF-8 JSON/],
    ["not UTF-8", build("{}").map((b, i) => (i === 9 ? 0xff : b)), /not valid UTF-8 JSON/],
    ["array header", build([1, 2]), /not a JSON object/],
    [
      "unknown dtype",
      build({ a: t("F128", [1], [0, 16]) }, new Uint8Array(16)),
      /unknown dtype "F128"/,
    ],
    ["offsets outside", build({ a: t("F32", [4], [0, 16]) }, new Uint8Array(8)), /past the data/],
    ["begin > end", build({ a: t("F32", [0], [8, 4]) }, new Uint8Array(8)), /begin <= end/],
    ["float offsets", build({ a: t("U8", [1], [0.5, 1.5]) }, new Uint8Array(2)), /begin <= end/],
    [
      "missing offsets",
      build({ a: { dtype: "U8", shape: [1] } }, new Uint8Array(1)),
      /data_offsets/,
    ],
    [
      "overlap",
      build({ a: t("F32", [2], [0, 8]), b: t("F32", [2], [4, 12]) }, new Uint8Array(12)),
      /overlaps/,
    ],
    [
      "gap",
      build({ a: t("F32", [1], [0, 4]), b: t("F32", [1], [8, 12]) }, new Uint8Array(12)),
      /Gap/,
    ],
    ["leading gap", build({ a: t("F32", [1], [4, 8]) }, new Uint8Array(8)), /Gap/],
    ["trailing bytes", build({ a: t("F32", [1], [0, 4]) }, new Uint8Array(12)), /cover 4/],
    ["shape mismatch", build({ a: t("F32", [3], [0, 8]) }, new Uint8Array(8)), /needs 12 bytes/],
    ["negative dim", build({ a: t("F32", [-2], [0, 8]) }, new Uint8Array(8)), /not a size/],
    [
      "huge shape",
      build({ a: t("F64", [2 ** 40, 2 ** 40], [0, 8]) }, new Uint8Array(8)),
      /overflows/,
    ],
    [
      "shape not array",
      build({ a: t("F32", 2 as unknown as number[], [0, 8]) }, new Uint8Array(8)),
      /not an array/,
    ],
    ["bad metadata", build({ __metadata__: { a: 1 } }), /not a string/],
  ];
  for (const [name, bytes, re] of cases) {
    assert.throws(() => parseSafetensors(bytes), (e: unknown) => {
      assert.ok(e instanceof SafetensorsError, `${name}: ${e}`);
      assert.match((e as Error).message, re, name);
      return true;
    });
  }
  const path = `${await Deno.makeTempDir()}/bad.safetensors`;
  await Deno.writeFile(path, cases[1][1]);
  await assert.rejects(() => readSafetensors(path), SafetensorsError);
});

// Reads and writes with the reference implementation, the `safetensors` package from PyPI
// (which `.ci/run` installs into its virtual environment).
const PY_INTEROP = `
import json, sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
mode, path = sys.argv[1], sys.argv[2]
if mode == "read":
    tensors = load_file(path)
    with safe_open(path, framework="np") as f:
        meta = f.metadata()
    print(json.dumps({"meta": meta, "tensors": {k: {"shape": list(v.shape), "data": v.ravel().tolist()}
                                                for k, v in tensors.items()}}))
else:
    tensors = {"w": np.arange(6, dtype="<f4").reshape(2, 3) / 4, "step": np.array([7], dtype="<i8"),
               "b": np.array([1.5, -2.25], dtype="<f8")}
    save_file(tensors, path, metadata={"writer": "python"})
`;

const safetensors = {
  tool: `NumPy and safetensors (python3-numpy; pip's safetensors, see .ci/run) for ${python}`,
  available: await pythonHas("numpy", "safetensors.numpy"),
};

testNeeding([safetensors], "safetensors files interoperate with Python's safetensors", async () => {
  const dir = await Deno.makeTempDir();
  const ours = `${dir}/ours.safetensors`;
  const { half: _, ...plain } = sample; // NumPy has no bfloat16
  await writeSafetensors(ours, plain, { format: "pt" });
  const got = JSON.parse(await runPython(PY_INTEROP, ["read", ours]));
  assert.deepEqual(got.meta, { format: "pt" });
  assert.deepEqual(got.tensors["conv.weight"], { shape: [2, 2], data: [1, 2, 3, 4] });
  assert.deepEqual(got.tensors["layer1.0.bn1.running_mean"], { shape: [3], data: [0.5, -1, 2] });
  assert.deepEqual(got.tensors.epoch, { shape: [], data: [440] });
  assert.deepEqual(got.tensors.idx, { shape: [2, 1], data: [-7, 9] });
  assert.deepEqual(got.tensors.mask, { shape: [5], data: [1, 0, 255, 3, 4] });
  assert.deepEqual(got.tensors.empty, { shape: [0, 3], data: [] });
  assert.deepEqual(got.tensors["rng.state"], { shape: [4], data: [1, 2, 3, 0xffffffff] });
  assert.deepEqual(Object.keys(got.tensors).sort(), Object.keys(plain).sort());

  const theirs = `${dir}/theirs.safetensors`;
  await runPython(PY_INTEROP, ["write", theirs]);
  const back = await readSafetensors(theirs);
  assert.deepEqual(back.metadata, { writer: "python" });
  assert.deepEqual(back.tensors.w, {
    dtype: "F32",
    shape: [2, 3],
    data: new Float32Array([0, 0.25, 0.5, 0.75, 1, 1.25]),
  });
  assert.deepEqual(back.tensors.step, { dtype: "I64", shape: [1], data: new BigInt64Array([7n]) });
  assert.deepEqual(back.tensors.b.data, new Float64Array([1.5, -2.25]));
});
