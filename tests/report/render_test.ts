/**
 * Renders a two-run report in headless Chromium and checks, in the screenshot's pixels, that
 * each run's certified-accuracy curve is drawn in its colour where its accuracies put it.
 * Without Chromium the test is ignored, except under CI=true, where it must run.
 *
 * @module
 */
import assert from "node:assert/strict";
import { renderReport } from "../../src/report/html.ts";
import { GRID, PALETTE, PLOT_FILL } from "../../src/report/svg.ts";
import type { RunSummary } from "../../src/report/summary.ts";
import { decodePng, hexRgb, type Image, near, pixel } from "./_png.ts";
import { exampleSummary } from "./_summaries.ts";

/** The first Chromium found on the PATH, if any. */
async function findChromium(): Promise<string | undefined> {
  for (const cmd of ["chromium", "chromium-browser"]) {
    try {
      const out = await new Deno.Command(cmd, {
        args: ["--version"],
        stdout: "null",
        stderr: "null",
      })
        .output();
      if (out.success) return cmd;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return undefined;
}

const chromium = await findChromium();
const ci = Deno.env.get("CI") === "true";
const ignore = chromium === undefined && !ci;

/** Screenshots `html` at width × height CSS pixels, one device pixel each. */
async function screenshot(html: string, width: number, height: number): Promise<Image> {
  if (chromium === undefined) {
    throw new Error("Chromium (Debian package chromium) is required when CI=true");
  }
  const dir = await Deno.makeTempDir({ prefix: "macer-render-" });
  try {
    await Deno.writeTextFile(`${dir}/report.html`, html);
    const out = await new Deno.Command(chromium, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        `--user-data-dir=${dir}/profile`,
        `--screenshot=${dir}/shot.png`,
        `--window-size=${width},${height}`,
        `file://${dir}/report.html`,
      ],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(90_000),
    }).output();
    const shot = await Deno.readFile(`${dir}/shot.png`).catch(() => undefined);
    if (shot === undefined) {
      throw new Error(
        `Chromium wrote no screenshot (exit ${out.code}): ${new TextDecoder().decode(out.stderr)}`,
      );
    }
    return decodePng(shot);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A run with a hard-mode certification only, so each run draws one solid curve. */
function hardOnly(name: string, hard: number[]): RunSummary {
  const s = exampleSummary(name, hard);
  for (const stage of s.stages) if (stage.kind === "certify") delete stage.modes.soft;
  return s;
}

/**
 * The plot area of the first chart: the first band of rows holding long runs of its fill or
 * of gridlines blended into it (the white page around it lies outside that colour range).
 */
function firstPlot(img: Image): { left: number; right: number; top: number; bottom: number } {
  const [fill, grid] = [hexRgb(PLOT_FILL), hexRgb(GRID)];
  const inPlot = (p: number[]) => p.every((v, c) => v >= grid[c] - 2 && v <= fill[c] + 2);
  let top = -1, bottom = -1, left = img.width, right = -1;
  for (let y = 0; y < img.height; y++) {
    let run = 0, best = 0, bestEnd = 0;
    for (let x = 0; x < img.width; x++) {
      run = inPlot(pixel(img, x, y)) ? run + 1 : 0;
      if (run > best) [best, bestEnd] = [run, x];
    }
    if (best >= 100) {
      if (top < 0) top = y;
      bottom = y;
      left = Math.min(left, bestEnd - best + 1);
      right = Math.max(right, bestEnd);
    } else if (top >= 0 && y - bottom > 4) break; // a curve may cut a row's runs short
  }
  assert.ok(top >= 0, "no plot area found in the screenshot");
  return { left, right, top, bottom };
}

/** Mean row of the pixels near `color` in columns [x0, x1] between rows top and bottom. */
function meanRow(
  img: Image,
  color: string,
  x0: number,
  x1: number,
  top: number,
  bottom: number,
): number {
  const rgb = hexRgb(color);
  let sum = 0, n = 0;
  for (let y = top; y <= bottom; y++) {
    for (let x = x0; x <= x1; x++) {
      if (near(pixel(img, x, y), rgb, 24)) [sum, n] = [sum + y, n + 1];
    }
  }
  assert.ok(n >= 2, `no ${color} pixels in columns ${x0}..${x1}`);
  return sum / n;
}

Deno.test({
  name:
    "renderReport() draws each run's curve in its colour at its accuracies (headless Chromium)" +
    (ignore ? " [ignored: chromium not found on the PATH]" : ""),
  ignore,
  async fn() {
    const a = [0.9, 0.88, 0.85, 0.8, 0.7, 0.6, 0.45, 0.3, 0.15, 0.1];
    const b = [0.6, 0.55, 0.5, 0.45, 0.4, 0.3, 0.2, 0.1, 0.05, 0.02];
    const html = renderReport([
      { dir: "runs/a", summary: hardOnly("run-a", a) },
      { dir: "runs/b", summary: hardOnly("run-b", b) },
    ]);
    const img = await screenshot(html, 1000, 1000);
    const plot = firstPlot(img);
    // The chart is 640 × 360 with a 552 × 280 plot area; the fill's edges may lose a pixel to
    // the axes, so allow a little slack.
    assert.ok(Math.abs(plot.right - plot.left - 551) <= 3, `plot width ${plot.right - plot.left}`);
    assert.ok(Math.abs(plot.bottom - plot.top - 279) <= 3, `plot height ${plot.bottom - plot.top}`);
    const rowOf = (acc: number) => plot.top + (1 - acc) * (plot.bottom - plot.top);
    const colOf = (radius: number) => plot.left + radius / 2.25 * (plot.right - plot.left);
    const [ca, cb] = [PALETTE[0], PALETTE[1]];
    for (const [i, radius] of [[0, 0], [4, 1], [9, 2.25]]) {
      const x = Math.round(colOf(radius));
      const [x0, x1] = [Math.max(plot.left, x - 2), Math.min(plot.right, x + 2)];
      const ya = meanRow(img, ca, x0, x1, plot.top - 4, plot.bottom + 4);
      const yb = meanRow(img, cb, x0, x1, plot.top - 4, plot.bottom + 4);
      assert.ok(
        Math.abs(ya - rowOf(a[i])) <= 4,
        `run-a at r=${radius}: row ${ya}, want ${rowOf(a[i])}`,
      );
      assert.ok(
        Math.abs(yb - rowOf(b[i])) <= 4,
        `run-b at r=${radius}: row ${yb}, want ${rowOf(b[i])}`,
      );
      assert.ok(ya < yb, `run-a (higher accuracy) must lie above run-b at r=${radius}`);
    }
  },
});
