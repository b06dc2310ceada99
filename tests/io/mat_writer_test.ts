import assert from "node:assert/strict";
import { read as readMat } from "mat-for-js";
import { encodeMat, writeMat } from "../../src/io/mat_writer.ts";
import { python, pythonHas, runPython, succeeds, testNeeding } from "../_tools.ts";

const scipy = {
  tool: `SciPy (python3-scipy) for ${python}`,
  available: await pythonHas("scipy.io"),
};
const octave = {
  tool: "Octave (octave-cli)",
  available: await succeeds("octave-cli", ["--version"]),
};

const hard = [0.61, 2.3, -1, -1, 0.25, 0.1];
const soft = new Float64Array([0.7, 2.5, -1, 0.05, -1, 0.12]);

async function tempMat(vars: Parameters<typeof writeMat>[1], opts = {}): Promise<string> {
  const path = `${await Deno.makeTempDir()}/500.mat`;
  await writeMat(path, vars, opts);
  return path;
}

Deno.test("writeMat() output reads back with mat-for-js", async () => {
  const path = await tempMat({ hard, soft, radii_grid: { rows: 2, cols: 2, data: [1, 2, 3, 4] } });
  const bytes = await Deno.readFile(path);
  const m = readMat(bytes.buffer);
  assert.deepEqual(m.data.hard, hard);
  assert.deepEqual(m.data.soft, Array.from(soft));
  assert.deepEqual(m.data.radii_grid, [[1, 3], [2, 4]]); // column-major in the file
  assert.match(m.header, /^MATLAB 5\.0 MAT-file/);
});

Deno.test("encodeMat() is MACER's layout: 1xN doubles, little-endian, 8-byte aligned", () => {
  const b = encodeMat({ hard: [0.5, -1] }, {
    createdAt: new Date(Date.UTC(2026, 10, 27, 9, 5, 3)),
  });
  const v = new DataView(b.buffer);
  assert.equal(
    new TextDecoder().decode(b.subarray(0, 116)).trimEnd(),
    "MATLAB 5.0 MAT-file, Platform: deno, Created on: Fri Nov 27 09:05:03 2026",
  );
  assert.equal(v.getUint16(124, true), 0x0100);
  assert.equal(String.fromCharCode(b[126], b[127]), "IM");
  assert.equal(v.getUint32(128, true), 14); // miMATRIX
  assert.equal(v.getUint32(132, true), b.length - 136);
  assert.deepEqual([v.getInt32(160, true), v.getInt32(164, true)], [1, 2]); // 1xN like savemat
  assert.equal(b.length % 8, 0);
  const col = encodeMat({ hard: [0.5, -1] }, { oneD: "column" });
  assert.deepEqual([
    new DataView(col.buffer).getInt32(160, true),
    new DataView(col.buffer).getInt32(164, true),
  ], [2, 1]);
});

Deno.test("encodeMat() rejects bad names and shapes", () => {
  assert.throws(() => encodeMat({ "1bad": [1] }), RangeError);
  assert.throws(() => encodeMat({ "a-b": [1] }), RangeError);
  assert.throws(() => encodeMat({ m: { rows: 2, cols: 2, data: [1, 2, 3] } }), RangeError);
  assert.throws(() => encodeMat({ m: { rows: -1, cols: 0, data: [] } }), RangeError);
});

testNeeding([scipy], "writeMat() output loads in scipy.io.loadmat", async () => {
  const path = await tempMat({
    hard,
    soft,
    empty: [],
    a_longer_name: { rows: 2, cols: 3, data: [1, 2, 3, 4, 5, 6] },
  });
  const out = await runPython(
    `
import json, sys, scipy.io as sio
d = sio.loadmat(sys.argv[1])
print(json.dumps({k: {"shape": list(v.shape), "dtype": str(v.dtype), "data": v.tolist()}
                  for k, v in d.items() if not k.startswith("__")}))
`,
    [path],
  );
  const d = JSON.parse(out);
  assert.deepEqual(d.hard, { shape: [1, 6], dtype: "float64", data: [hard] });
  assert.deepEqual(d.soft, { shape: [1, 6], dtype: "float64", data: [Array.from(soft)] });
  assert.deepEqual(d.empty.shape, [1, 0]);
  assert.deepEqual(d.a_longer_name.data, [[1, 3, 5], [2, 4, 6]]);
});

testNeeding([octave], "writeMat() output loads in Octave", async () => {
  const path = await tempMat({ hard });
  const out = await new Deno.Command("octave-cli", {
    args: [
      "--quiet",
      "--eval",
      `s = load('${path}'); printf('%d %d %.17g\\n', size(s.hard), s.hard(2))`,
    ],
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  assert.equal(new TextDecoder().decode(out.stdout).trim(), "1 6 2.2999999999999998");
});
