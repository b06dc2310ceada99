import assert from "node:assert/strict";
import {
  CERTIFY_LOG_HEADER,
  CertifyLog,
  formatCertifyRow,
  formatTimedelta,
  macerSummaryLines,
  parseCertifyLog,
  pyFormatPrecision,
  pyRepr,
  writeSummaryJson,
} from "../../src/io/results.ts";
import { computeMetrics } from "../../src/smoothing/metrics.ts";
import { loadFixture } from "../smoothing/_fixtures.ts";

type Formats = {
  radius_g3: [number, string][];
  timedelta: [number, string][];
  repr: [number, string][];
  macer_summary: { results: [number, number, number][]; lines: string[]; mat: number[] };
};
const fx = await loadFixture<Formats>("formats.json");

Deno.test("pyFormatPrecision() matches Python's '{:.3}' used for the radius column", () => {
  for (const [x, want] of fx.radius_g3) assert.equal(pyFormatPrecision(x, 3), want, `${x}`);
  assert.equal(pyFormatPrecision(1.125, 3), "1.12"); // exact tie: half to even like Python
  assert.equal(pyFormatPrecision(-0.25, 3), "-0.25");
  assert.throws(() => pyFormatPrecision(1, 0), RangeError);
});

Deno.test("formatTimedelta() matches Python's str(timedelta(seconds=...))", () => {
  for (const [s, want] of fx.timedelta) assert.equal(formatTimedelta(s), want, `${s}`);
  assert.throws(() => formatTimedelta(-1), RangeError);
  assert.throws(() => formatTimedelta(Infinity), RangeError);
});

Deno.test("pyRepr() matches Python's repr(float)", () => {
  for (const [x, want] of fx.repr) assert.equal(pyRepr(x), want, `${x}`);
  assert.equal(pyRepr(NaN), "nan");
  assert.equal(pyRepr(-2.5), "-2.5");
});

Deno.test("macerSummaryLines() prints exactly what MACER's rs/certify.py prints", () => {
  const results = fx.macer_summary.results.map(([label, prediction, radius]) => ({
    label,
    prediction,
    radius,
  }));
  const m = computeMetrics(results);
  assert.deepEqual(macerSummaryLines(m), [
    "===Certify Summary===",
    "Total Image Number: 6",
    ...fx.macer_summary.lines,
  ]);
  const both = macerSummaryLines({ hard: m, soft: m });
  assert.deepEqual(both.slice(0, 4), [
    "===Certify Summary===",
    "Total Image Number: 6",
    "===Hard certify===",
    "Radius: 0.0  Number: 4  Acc: 66.66666666666666",
  ]);
  assert.equal(both[14], "===Soft certify===");
  assert.equal(both.at(-1), "ACR: 0.5433333333333333");
});

Deno.test("formatCertifyRow() writes certify.py's line", () => {
  assert.equal(
    formatCertifyRow({
      idx: 500,
      label: 3,
      predict: 3,
      radius: 0.61234,
      correct: true,
      time: 1.234567,
    }),
    "500\t3\t3\t0.612\t1\t0:00:01.234567",
  );
  assert.equal(
    formatCertifyRow({ idx: 7, label: 2, predict: -1, radius: 0, correct: 0, time: 12 }),
    "7\t2\t-1\t0.0\t0\t0:00:12",
  );
});

Deno.test("CertifyLog streams each line to disk before close, and can resume", async () => {
  const path = `${await Deno.makeTempDir()}/certify.tsv`;
  const log = await CertifyLog.create(path);
  await log.append({ idx: 0, label: 1, predict: 1, radius: 1.5, correct: 1, time: 2.5 });
  // Visible to another reader right away: nothing sits in a user-space buffer.
  assert.equal(
    await Deno.readTextFile(path),
    `${CERTIFY_LOG_HEADER}\n0\t1\t1\t1.5\t1\t0:00:02.500000\n`,
  );
  await log.close();
  {
    await using again = await CertifyLog.create(path, { append: true, fsync: true });
    await again.append({ idx: 20, label: 4, predict: -1, radius: 0, correct: 0, time: 0.25 });
  }
  const text = await Deno.readTextFile(path);
  assert.equal(text.split("\n").filter((l) => l === CERTIFY_LOG_HEADER).length, 1);
  const rows = parseCertifyLog(text + "40\t3\t3\t0.7"); // a line cut short by a crash is ignored
  assert.deepEqual(rows.map((r) => [r.idx, r.predict, r.radius, r.correct, r.time]), [
    [0, 1, 1.5, 1, "0:00:02.500000"],
    [20, -1, 0, 0, "0:00:00.250000"],
  ]);
  assert.throws(() => parseCertifyLog("a\tb\n"), /Not a certify log/);
});

Deno.test("writeSummaryJson() writes certified accuracy, ACR, counts and timings", async () => {
  const path = `${await Deno.makeTempDir()}/summary.json`;
  const m = computeMetrics([{ label: 1, prediction: 1, radius: 0.3 }, {
    label: 0,
    prediction: -1,
    radius: 0,
  }]);
  await writeSummaryJson(path, {
    params: { sigma: 0.25, n0: 100, n: 100000, alpha: 0.001 },
    modes: { hard: m },
    timings: { totalSeconds: 12.5 },
  });
  const doc = JSON.parse(await Deno.readTextFile(path));
  assert.equal(doc.format, "macer-certify-summary");
  assert.equal(doc.modes.hard.acr, 0.15);
  assert.deepEqual(doc.modes.hard.certifiedAccuracy[1], { radius: 0.25, count: 1, accuracy: 0.5 });
  assert.deepEqual(doc.modes.hard.counts, { total: 2, correct: 1, wrong: 0, abstained: 1 });
  assert.equal(doc.timings.totalSeconds, 12.5);
});
