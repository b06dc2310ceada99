import assert from "node:assert/strict";
import { deflateSync } from "node:zlib";
import { decodePng } from "./_png.ts";

/** Encodes RGB rows, row y with filter type filters[y] (CRCs left zero: the decoder skips them). */
function encodeRgb(width: number, rows: number[][], filters: number[]): Uint8Array {
  const stride = width * 3;
  const raw: number[] = [];
  rows.forEach((row, y) => {
    raw.push(filters[y]);
    for (let i = 0; i < stride; i++) {
      const a = i >= 3 ? row[i - 3] : 0, b = y > 0 ? rows[y - 1][i] : 0;
      const c = i >= 3 && y > 0 ? rows[y - 1][i - 3] : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c)
        ? a
        : Math.abs(p - b) <= Math.abs(p - c)
        ? b
        : c;
      const pred = [0, a, b, (a + b) >> 1, paeth][filters[y]];
      raw.push((row[i] - pred) & 0xff);
    }
  });
  const chunk = (type: string, data: Uint8Array) => {
    const out = new Uint8Array(12 + data.length);
    new DataView(out.buffer).setUint32(0, data.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(data, 8);
    return out;
  };
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, width);
  new DataView(ihdr.buffer).setUint32(4, rows.length);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const idat = new Uint8Array(deflateSync(new Uint8Array(raw)));
  // Split the compressed data over two IDAT chunks, as encoders may.
  const parts = [
    new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk("IHDR", ihdr),
    chunk("IDAT", idat.subarray(0, 5)),
    chunk("IDAT", idat.subarray(5)),
    chunk("IEND", new Uint8Array()),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((off, p) => (out.set(p, off), off + p.length), 0);
  return out;
}

Deno.test("decodePng() undoes each of the five scanline filters", () => {
  const width = 4;
  const rows = Array.from(
    { length: 5 },
    (_, y) =>
      Array.from({ length: width * 3 }, (_, i) => (y * 71 + i * 37 + ((i * y) % 7) * 29) & 0xff),
  );
  const img = decodePng(encodeRgb(width, rows, [0, 1, 2, 3, 4]));
  assert.equal(img.width, 4);
  assert.equal(img.height, 5);
  for (let y = 0; y < 5; y++) {
    for (let x = 0; x < width; x++) {
      const got = [...img.rgba.subarray((y * width + x) * 4, (y * width + x) * 4 + 4)];
      assert.deepEqual(got, [...rows[y].slice(x * 3, x * 3 + 3), 255], `pixel ${x},${y}`);
    }
  }
  assert.throws(() => decodePng(new Uint8Array(16)), TypeError);
});
