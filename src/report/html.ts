/**
 * The HTML report of one or several pipeline runs: a single self-contained page (inline CSS
 * and SVG, nothing fetched) with the certified-accuracy curves of every run, a table of
 * certified accuracy at MACER's radii and ACR, training losses and times, predictions.
 *
 * @module
 */

import { writeFileAtomic } from "../io/atomic.ts";
import { DEFAULT_RADII } from "../smoothing/metrics.ts";
import type { CertifyMetrics } from "../smoothing/metrics.ts";
import type { AccuracyCurve } from "./svg.ts";
import {
  certifiedAccuracyChart,
  escapeXml,
  formatTick,
  lossChart,
  PALETTE,
  secondsChart,
} from "./svg.ts";
import type { CertifyMode, CertifyStageSummary, RunSummary, TrainStageSummary } from "./summary.ts";
import { readRunSummary } from "./summary.ts";

/** One run to report: its directory and its summary. */
export interface ReportRun {
  dir: string;
  summary: RunSummary;
}

/** File name of the report inside a run directory. */
export const REPORT_FILE = "report.html";

/** Dash pattern per mode: hard solid, soft dashed, so a run keeps one colour. */
export const MODE_DASH: Readonly<Record<CertifyMode, string | undefined>> = Object.freeze({
  hard: undefined,
  soft: "6 4",
});

const CSS = `
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1200px; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; } h3 { font-size: 15px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #d0d4d9; padding: 3px 8px; text-align: right; }
th { background: #f0f2f5; } td.text, th.text { text-align: left; }
figure { margin: 8px 0; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 6px; vertical-align: -1px; }
.note { color: #555; font-size: 13px; }
`;

function esc(v: string | number): string {
  return escapeXml(String(v));
}

/** Fixed decimals for measured fractions and radii. */
function fixed(v: number, digits = 3): string {
  return v.toFixed(digits);
}

function dirName(dir: string): string {
  return dir.replace(/[\\/]+$/, "").split(/[\\/]/).pop() || dir;
}

/** A label per run: the pipeline's name, with the directory where names repeat. */
function runLabels(runs: readonly ReportRun[]): string[] {
  const names = runs.map((r) => r.summary.name);
  return runs.map((r) =>
    names.indexOf(r.summary.name) !== names.lastIndexOf(r.summary.name)
      ? `${r.summary.name} (${dirName(r.dir)})`
      : r.summary.name
  );
}

interface CertifyRow {
  run: string;
  stage: CertifyStageSummary;
  mode: CertifyMode;
  metrics: CertifyMetrics;
  color: string;
}

/** Every (run, certify stage, mode), each run/stage pair with the next palette colour. */
function certifyRows(runs: readonly ReportRun[], labels: string[]): CertifyRow[] {
  const rows: CertifyRow[] = [];
  let k = 0;
  runs.forEach((r, i) => {
    for (const stage of r.summary.stages) {
      if (stage.kind !== "certify") continue;
      const color = PALETTE[k++ % PALETTE.length];
      for (const mode of ["hard", "soft"] as const) {
        const metrics = stage.modes[mode];
        if (metrics) rows.push({ run: labels[i], stage, mode, metrics, color });
      }
    }
  });
  return rows;
}

/** Certified accuracy at radius r, when the metrics hold it. */
function accuracyAt(m: CertifyMetrics, r: number): { count: number; accuracy: number } | undefined {
  return m.certifiedAccuracy.find((p) => Math.abs(p.radius - r) < 1e-9);
}

function certifySection(rows: CertifyRow[]): string {
  if (rows.length === 0) {
    return `<h2>Certified accuracy</h2>\n<p class="note">No certification stages.</p>`;
  }
  const curves: AccuracyCurve[] = rows.map((r) => ({
    label: `${r.run} / ${r.stage.name} / ${r.mode} (σ ${r.stage.sigma})`,
    color: r.color,
    dash: MODE_DASH[r.mode],
    points: r.metrics.certifiedAccuracy,
  }));
  const head =
    `<tr><th class="text">run</th><th class="text">stage</th><th class="text">mode</th>` +
    `<th>σ</th><th>n</th><th>images</th>` +
    DEFAULT_RADII.map((r) => `<th>${esc(formatTick(r))}</th>`).join("") + `<th>ACR</th></tr>`;
  const body = rows.map((r) => {
    const cells = DEFAULT_RADII.map((radius) => {
      const a = accuracyAt(r.metrics, radius);
      return a === undefined
        ? `<td>–</td>`
        : `<td title="${esc(`${a.count} of ${r.metrics.counts.total}`)}">${fixed(a.accuracy)}</td>`;
    });
    return `<tr><td class="text"><span class="swatch" style="background:${esc(r.color)}"></span>` +
      `${esc(r.run)}</td><td class="text">${
        esc(r.stage.name)
      }</td><td class="text">${r.mode}</td>` +
      `<td>${esc(r.stage.sigma)}</td><td>${esc(r.stage.n)}</td><td>${
        esc(r.metrics.counts.total)
      }</td>` +
      cells.join("") + `<td>${fixed(r.metrics.acr)}</td></tr>`;
  });
  return [
    `<h2>Certified accuracy</h2>`,
    `<figure>${certifiedAccuracyChart(curves)}</figure>`,
    `<p class="note">Fraction of the certified images classified correctly with an L2 radius of ` +
    `at least r (columns); ACR: average certified radius. Soft mode is dashed.</p>`,
    `<table class="certified">\n${head}\n${body.join("\n")}\n</table>`,
  ].join("\n");
}

function trainStage(run: string, s: TrainStageSummary): string {
  const title = `${run} / ${s.name}`;
  const total = s.epochs.reduce((a, e) => a + (e.seconds ?? 0), 0);
  const last = s.epochs.at(-1);
  const loss = (v: number | null | undefined) => v === null || v === undefined ? "–" : fixed(v, 4);
  return [
    `<h3>${esc(title)}</h3>`,
    `<p class="note">${esc(s.method)}, σ ${esc(s.sigma)}, ${esc(s.model)} on ${esc(s.dataset)}: ` +
    `${s.epochs.length} epochs in ${fixed(total, 1)} s; last epoch: classification loss ` +
    `${loss(last?.classification)}, robustness loss ${loss(last?.robustness)}.</p>`,
    `<div class="charts"><figure>${lossChart(s.epochs, `Loss: ${title}`)}</figure>` +
    `<figure>${secondsChart(s.epochs, `Seconds per epoch: ${title}`)}</figure></div>`,
  ].join("\n");
}

function trainSection(runs: readonly ReportRun[], labels: string[]): string {
  const parts = runs.flatMap((r, i) =>
    r.summary.stages.flatMap((s) => s.kind === "train" ? [trainStage(labels[i], s)] : [])
  );
  if (parts.length === 0) return "";
  return `<h2>Training</h2>\n${parts.join("\n")}`;
}

function predictSection(runs: readonly ReportRun[], labels: string[]): string {
  const rows = runs.flatMap((r, i) =>
    r.summary.stages.flatMap((s) =>
      s.kind !== "predict" ? [] : [
        `<tr><td class="text">${esc(labels[i])}</td><td class="text">${esc(s.name)}</td>` +
        `<td class="text">${esc(s.model)}</td><td>${esc(s.sigma)}</td><td>${esc(s.count)}</td>` +
        `<td>${esc(s.correct)}</td><td>${esc(s.abstained)}</td><td>${fixed(s.accuracy)}</td>` +
        `<td>${fixed(s.abstention_rate)}</td></tr>`,
      ]
    )
  );
  if (rows.length === 0) return "";
  const head =
    `<tr><th class="text">run</th><th class="text">stage</th><th class="text">model</th>` +
    `<th>σ</th><th>images</th><th>correct</th><th>abstained</th><th>accuracy</th>` +
    `<th>abstention rate</th></tr>`;
  return `<h2>Predictions</h2>\n<table class="predict">\n${head}\n${rows.join("\n")}\n</table>`;
}

/**
 * Renders the report of one or several runs as one self-contained HTML page.
 *
 * @param runs the runs, in the order they are listed and coloured
 * @returns the page
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderReport } from "./html.ts";
 * const html = renderReport([{ dir: "runs/a", summary: { format: "macer-pipeline-summary", version: 1, name: "a", stages: [] } }]);
 * assert.ok(html.startsWith("<!DOCTYPE html>") && html.includes("<h1>MACER report: a</h1>"));
 * ```
 */
export function renderReport(runs: readonly ReportRun[]): string {
  const labels = runLabels(runs);
  const title = `MACER report: ${labels.join(", ")}`;
  const list = runs.map((r, i) =>
    `<tr><td class="text">${esc(labels[i])}</td><td class="text">${esc(r.dir)}</td>` +
    `<td class="text">${
      esc(r.summary.stages.map((s) => `${s.name} (${s.kind})`).join(", "))
    }</td></tr>`
  );
  return [
    `<!DOCTYPE html>`,
    `<html lang="en">`,
    `<head>`,
    `<meta charset="utf-8">`,
    `<meta name="viewport" content="width=device-width, initial-scale=1">`,
    `<title>${esc(title)}</title>`,
    `<style>${CSS}</style>`,
    `</head>`,
    `<body>`,
    `<h1>${esc(title)}</h1>`,
    certifySection(certifyRows(runs, labels)),
    trainSection(runs, labels),
    predictSection(runs, labels),
    `<h2>Runs</h2>`,
    `<table class="runs">\n<tr><th class="text">run</th><th class="text">directory</th>` +
    `<th class="text">stages</th></tr>\n${list.join("\n")}\n</table>`,
    `</body>`,
    `</html>\n`,
  ].filter((s) => s !== "").join("\n");
}

/**
 * Writes `<runDir>/report.html` from `<runDir>/summary.json`, atomically, so a browser
 * reloading it never sees half a page.
 *
 * @param runDir a run directory
 * @returns the path written
 * @throws SummaryError when the summary is missing or malformed
 */
export async function writeReport(runDir: string): Promise<string> {
  const summary = await readRunSummary(runDir);
  const path = `${runDir.replace(/[\\/]+$/, "")}/${REPORT_FILE}`;
  await writeFileAtomic(path, new TextEncoder().encode(renderReport([{ dir: runDir, summary }])));
  return path;
}
