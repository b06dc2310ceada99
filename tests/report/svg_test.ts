import assert from "node:assert/strict";
import {
  certifiedAccuracyChart,
  escapeXml,
  lineChart,
  lossChart,
  niceTicks,
  PALETTE,
  secondsChart,
} from "../../src/report/svg.ts";
import { metrics } from "./_summaries.ts";

/** The curves' polylines (the axes are drawn 1 px wide, curves 2 px): colour and points. */
function curves(svg: string): { color: string; points: string }[] {
  return [
    ...svg.matchAll(/<polyline points="([^"]*)" fill="none" stroke="([^"]*)" stroke-width="2"/g),
  ]
    .map((m) => ({ color: m[2], points: m[1] }));
}

function circles(svg: string): string[] {
  return [...svg.matchAll(/<circle cx="([^"]*)" cy="([^"]*)"/g)].map((m) => `${m[1]},${m[2]}`);
}

Deno.test("certifiedAccuracyChart() maps each radius and accuracy to its pixel", () => {
  // 640 × 360 chart: plot x 64..616 for radius 0..2.25, y 312..32 for accuracy 0..1.
  const acc = [1, 0.75, 0.5, 0.5, 0.5, 0.25, 0.25, 0.1, 0.05, 0];
  const svg = certifiedAccuracyChart([{
    label: "a",
    color: "#123456",
    points: metrics(acc, 0.5).certifiedAccuracy,
  }]);
  assert.deepEqual(curves(svg), [{
    color: "#123456",
    points:
      "64,32 125.33,102 186.67,172 248,172 309.33,172 370.67,242 432,242 493.33,284 554.67,298 616,312",
  }]);
  assert.equal(circles(svg).length, 10);
  assert.equal(circles(svg)[1], "125.33,102");
  // MACER's radii label the x axis, the y axis runs 0 to 1.
  for (const t of ["0", "0.25", "0.5", "0.75", "1", "1.25", "1.5", "1.75", "2", "2.25"]) {
    assert.match(svg, new RegExp(`text-anchor="middle">${t.replace(".", "\\.")}</text>`));
  }
  assert.match(svg, /text-anchor="end">0\.8<\/text>/);
});

Deno.test("certifiedAccuracyChart() sorts points by radius and draws steps on request", () => {
  const points = [{ radius: 0.25, count: 5, accuracy: 0.5 }, { radius: 0, count: 10, accuracy: 1 }];
  const linear = certifiedAccuracyChart([{ label: "a", color: "#000000", points }]);
  assert.equal(curves(linear)[0].points, "64,32 125.33,172");
  const step = certifiedAccuracyChart([{ label: "a", color: "#000000", points }], "step");
  assert.equal(curves(step)[0].points, "64,32 125.33,32 125.33,172");
});

Deno.test("certifiedAccuracyChart() draws one curve and legend row per entry, dashed where asked", () => {
  const m = metrics([0.9, 0.5], 0.3).certifiedAccuracy;
  const svg = certifiedAccuracyChart([
    { label: "run-a / hard", color: PALETTE[0], points: m },
    { label: "run-a / soft", color: PALETTE[0], points: m, dash: "6 4" },
    { label: "run-b / hard", color: PALETTE[1], points: m },
  ]);
  assert.deepEqual(curves(svg).map((c) => c.color), [PALETTE[0], PALETTE[0], PALETTE[1]]);
  assert.equal((svg.match(/stroke-dasharray="6 4"/g) ?? []).length, 2); // the curve and its legend line
  for (const label of ["run-a / hard", "run-a / soft", "run-b / hard"]) {
    assert.ok(svg.includes(`>${label}</text>`));
  }
  // Three legend rows of 18 px below the 360 px chart, plus 8 px of space.
  assert.match(svg, /^<svg [^>]*width="640" height="422"/);
});

Deno.test("lineChart() escapes every text: title, axis labels, legend, colours", () => {
  const evil = `<script>alert("x")</script> & 'q'`;
  const svg = lineChart(
    [{ label: evil, color: `red"/><script>`, points: [{ x: 0, y: 1 }, { x: 1, y: 2 }] }],
    { title: evil, x: { label: evil }, y: { label: "<y>" } },
  );
  assert.ok(!svg.includes("<script"), "raw markup leaked");
  assert.ok(svg.includes("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;"));
  assert.ok(svg.includes(`stroke="red&quot;/&gt;&lt;script&gt;"`));
  assert.ok(svg.includes("&lt;y&gt;"));
  assert.equal(escapeXml("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
});

Deno.test("lineChart() with no data draws the axes and says so", () => {
  const svg = certifiedAccuracyChart([]);
  assert.deepEqual(curves(svg), []);
  assert.ok(svg.includes(">no data</text>"));
  assert.match(svg, /^<svg [^>]*height="360"/); // no legend rows
  const empty = lineChart([{ label: "none", color: "#000000", points: [] }], {
    title: "t",
    x: { label: "x" },
    y: { label: "y" },
  });
  assert.ok(empty.includes(">no data</text>") && empty.includes(">none</text>"));
});

Deno.test("lineChart() marks a lone point and leaves gaps at null values", () => {
  const svg = lineChart(
    [{
      label: "s",
      color: "#000000",
      points: [{ x: 0, y: 1 }, { x: 1, y: null }, { x: 2, y: 2 }, { x: 3, y: 3 }],
    }],
    { title: "t", x: { label: "x", ticks: [0, 3] }, y: { label: "y", ticks: [0, 4] } },
  );
  // x 0..3 over 64..616 (184 px per unit); y 0..4 over 312..32 (70 px per unit).
  assert.deepEqual(curves(svg).map((c) => c.points), ["432,172 616,102"]);
  assert.deepEqual(circles(svg), ["64,242"]);
});

Deno.test("lossChart() and secondsChart() of a single epoch put it mid-axis", () => {
  const epochs = [{ epoch: 1, lr: 0.01, classification: 1.23, robustness: 0.08, seconds: 31.2 }];
  // 480 × 300: plot x 64..456, y 252..32; epochs 0..2, loss 0..1.5.
  const loss = lossChart(epochs, "Loss");
  assert.deepEqual(circles(loss), ["260,71.6", "260,240.27"]);
  assert.ok(
    loss.includes(">classification loss</text>") && loss.includes(">robustness loss</text>"),
  );
  assert.match(loss, /text-anchor="middle">1<\/text>/);
  const seconds = secondsChart(epochs, "Seconds");
  assert.deepEqual(circles(seconds), ["260,80.4"]); // 0..40 s
});

Deno.test("lossChart() draws both losses across epochs", () => {
  const epochs = [1, 2, 3, 4].map((e) => ({
    epoch: e,
    lr: 0.01,
    classification: 2 / e,
    robustness: e === 3 ? null : 0.5,
    seconds: 30,
  }));
  const svg = lossChart(epochs, "Loss");
  const c = curves(svg);
  assert.deepEqual(c.map((x) => x.color), [PALETTE[0], PALETTE[1]]);
  assert.equal(c[0].points.split(" ").length, 4);
  // The robustness loss stops at epoch 2; epoch 4, alone after the gap, is a dot.
  assert.equal(c[1].points.split(" ").length, 2);
  assert.equal(circles(svg).length, 1);
});

Deno.test("niceTicks() picks steps of 1, 2 or 5 covering the range", () => {
  assert.deepEqual(niceTicks(0.13, 0.92), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0, 440, 5, true), [0, 100, 200, 300, 400, 500]);
  assert.deepEqual(niceTicks(1, 1, 5, true), [0, 1, 2]);
  assert.deepEqual(niceTicks(1, 3, 5, true), [1, 2, 3]);
  assert.deepEqual(niceTicks(31.2, 30.4), [30.4, 30.6, 30.8, 31, 31.2]);
  assert.deepEqual(niceTicks(0, 0), [-1, -0.5, 0, 0.5, 1]);
  assert.throws(() => niceTicks(0, NaN), RangeError);
});
