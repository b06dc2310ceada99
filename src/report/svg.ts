/**
 * Self-contained SVG line charts (axes, ticks, labels, legend) for the report: certified
 * accuracy against radius, losses per epoch, seconds per epoch. Pure functions returning
 * strings; every piece of text is escaped, so labels taken from files are safe inline.
 *
 * @module
 */

import type { RadiusAccuracy } from "../smoothing/metrics.ts";
import { DEFAULT_RADII } from "../smoothing/metrics.ts";
import type { EpochSummary } from "./summary.ts";

/** Curve colours, in order (matplotlib's tab10: distinct, and readable when printed). */
export const PALETTE: readonly string[] = Object.freeze([
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
  "#7f7f7f",
  "#bcbd22",
]);

/** Space around the plot area, in pixels; the legend goes below the chart's `height`. */
export const MARGIN = Object.freeze({ top: 32, right: 24, bottom: 48, left: 64 });
/** Height of one legend row, in pixels. */
export const LEGEND_ROW = 18;
/** Fill of the plot area (the rendering test finds the plot by it). */
export const PLOT_FILL = "#f6f7f9";
/** Colour of the gridlines. */
export const GRID = "#e1e4e8";

/** One point; `y` null leaves a gap in the line (e.g. a loss that was not finite). */
export interface Point {
  x: number;
  y: number | null;
}

/** One curve. */
export interface Series {
  label: string;
  /** CSS colour of the line. */
  color: string;
  points: readonly Point[];
  /** SVG `stroke-dasharray`, e.g. "6 4"; solid when absent. */
  dash?: string;
  /** Dots at the data points (always drawn for a lone point, which has no line). */
  markers?: boolean;
  /** "linear": straight segments; "step": each value held until the next x. */
  shape?: "linear" | "step";
}

/** One axis. The drawn range covers the ticks and every data value. */
export interface AxisOptions {
  label: string;
  /** Tick values; chosen from the data when absent. */
  ticks?: readonly number[];
  /** Only whole-number ticks (epochs). */
  integer?: boolean;
  /** Let the range start at 0 (losses, seconds). */
  includeZero?: boolean;
  /** Tick label text; shortest decimal by default. */
  format?: (v: number) => string;
}

/** A chart: title, axes, size (width × height, not counting the legend rows). */
export interface ChartOptions {
  title: string;
  x: AxisOptions;
  y: AxisOptions;
  width?: number;
  height?: number;
}

/**
 * Escapes text for SVG/HTML content and attribute values.
 *
 * @param s any text
 * @returns the text with `& < > " '` replaced by entities
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { escapeXml } from "./svg.ts";
 * assert.equal(escapeXml(`a<b & "c"`), "a&lt;b &amp; &quot;c&quot;");
 * ```
 */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ENTITIES[ch]);
}

const ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Shortest decimal text of a tick value, free of floating-point noise (0.30000000000000004). */
export function formatTick(v: number): string {
  return String(Number(v.toPrecision(12)));
}

/**
 * Evenly spaced "nice" tick values (steps of 1, 2 or 5 × 10^k) covering [min, max].
 *
 * @param min smallest value to cover
 * @param max largest value to cover
 * @param count about how many intervals
 * @param integer whether steps must be whole numbers
 * @returns ascending tick values, at least two
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { niceTicks } from "./svg.ts";
 * assert.deepEqual(niceTicks(0.13, 0.92), [0, 0.2, 0.4, 0.6, 0.8, 1]);
 * ```
 */
export function niceTicks(min: number, max: number, count = 5, integer = false): number[] {
  if (!(Number.isFinite(min) && Number.isFinite(max))) {
    throw new RangeError("Ticks need finite bounds");
  }
  if (min > max) [min, max] = [max, min];
  if (min === max) {
    // One value: widen around it so it sits inside the axis rather than on a zero-width range.
    const pad = integer ? 1 : min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  if (integer) step = Math.max(1, Math.round(step));
  const first = Math.floor(min / step + 1e-9), last = Math.ceil(max / step - 1e-9);
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toPrecision(12)));
  return ticks;
}

/** Maps data values to pixels inside the plot area. */
interface Scale {
  /** Data range drawn. */
  min: number;
  max: number;
  ticks: number[];
  /** Pixel of a data value. */
  px(v: number): number;
}

function axisScale(axis: AxisOptions, values: number[], from: number, to: number): Scale {
  const data = axis.includeZero ? [...values, 0] : values;
  let ticks: number[];
  if (axis.ticks && axis.ticks.length > 0) {
    ticks = [...axis.ticks];
  } else if (data.length > 0) {
    ticks = niceTicks(Math.min(...data), Math.max(...data), 5, axis.integer);
  } else {
    ticks = niceTicks(0, 1, 5, axis.integer);
  }
  const all = [...ticks, ...data];
  let min = Math.min(...all), max = Math.max(...all);
  if (min === max) [min, max] = [min - 1, max + 1];
  const span = max - min;
  return { min, max, ticks, px: (v) => from + (v - min) / span * (to - from) };
}

/** Pixel coordinates with at most two decimals. */
function num(v: number): string {
  return String(Math.round(v * 100) / 100);
}

/** Runs of consecutive points with finite coordinates. */
function segments(points: readonly Point[]): { x: number; y: number }[][] {
  const out: { x: number; y: number }[][] = [];
  let cur: { x: number; y: number }[] = [];
  for (const p of points) {
    if (p.y === null || !Number.isFinite(p.x) || !Number.isFinite(p.y)) {
      if (cur.length) out.push(cur);
      cur = [];
    } else cur.push({ x: p.x, y: p.y });
  }
  if (cur.length) out.push(cur);
  return out;
}

/** The vertices a segment is drawn through, in data coordinates. */
function vertices(
  seg: { x: number; y: number }[],
  shape: "linear" | "step",
): { x: number; y: number }[] {
  if (shape === "linear") return seg;
  const out: { x: number; y: number }[] = [];
  seg.forEach((p, i) => {
    if (i > 0) out.push({ x: p.x, y: seg[i - 1].y });
    out.push(p);
  });
  return out;
}

function text(x: number, y: number, s: string, attrs = ""): string {
  return `<text x="${num(x)}" y="${num(y)}"${attrs ? " " + attrs : ""}>${escapeXml(s)}</text>`;
}

/**
 * An SVG line chart. The plot area spans x from `MARGIN.left` to `width - MARGIN.right` and
 * y from `MARGIN.top` to `height - MARGIN.bottom`; a legend row per series follows below.
 *
 * @param series curves, drawn in order
 * @param options title, axes and size (default 640 × 360)
 * @returns an `<svg>` element
 */
export function lineChart(series: readonly Series[], options: ChartOptions): string {
  const width = options.width ?? 640, height = options.height ?? 360;
  const left = MARGIN.left, right = width - MARGIN.right;
  const top = MARGIN.top, bottom = height - MARGIN.bottom;
  const segs = series.map((s) => segments(s.points));
  const xs = segs.flat(2).map((p) => p.x), ys = segs.flat(2).map((p) => p.y);
  const sx = axisScale(options.x, xs, left, right);
  const sy = axisScale(options.y, ys, bottom, top);
  const fx = options.x.format ?? formatTick, fy = options.y.format ?? formatTick;
  const total = height + (series.length ? series.length * LEGEND_ROW + 8 : 0);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${total}" ` +
    `viewBox="0 0 ${width} ${total}" role="img" font-family="sans-serif" font-size="12">`,
    `<title>${escapeXml(options.title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${total}" fill="#ffffff"/>`,
    `<rect x="${left}" y="${top}" width="${right - left}" height="${
      bottom - top
    }" fill="${PLOT_FILL}"/>`,
  ];
  // Grid and ticks.
  for (const t of sx.ticks) {
    const x = num(sx.px(t));
    out.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${bottom}" stroke="${GRID}"/>`);
    out.push(`<line x1="${x}" y1="${bottom}" x2="${x}" y2="${bottom + 5}" stroke="#333333"/>`);
    out.push(text(sx.px(t), bottom + 18, fx(t), `text-anchor="middle"`));
  }
  for (const t of sy.ticks) {
    const y = num(sy.px(t));
    out.push(`<line x1="${left}" y1="${y}" x2="${right}" y2="${y}" stroke="${GRID}"/>`);
    out.push(`<line x1="${left - 5}" y1="${y}" x2="${left}" y2="${y}" stroke="#333333"/>`);
    out.push(text(left - 8, sy.px(t) + 4, fy(t), `text-anchor="end"`));
  }
  out.push(
    `<polyline points="${left},${top} ${left},${bottom} ${right},${bottom}" fill="none" stroke="#333333"/>`,
    text(width / 2, 20, options.title, `text-anchor="middle" font-size="14" font-weight="bold"`),
    text((left + right) / 2, bottom + 38, options.x.label, `text-anchor="middle"`),
    text(
      16,
      (top + bottom) / 2,
      options.y.label,
      `text-anchor="middle" transform="rotate(-90 16 ${num((top + bottom) / 2)})"`,
    ),
  );
  if (xs.length === 0) {
    out.push(
      text(
        (left + right) / 2,
        (top + bottom) / 2,
        "no data",
        `text-anchor="middle" fill="#666666"`,
      ),
    );
  }
  // Curves, then the legend.
  series.forEach((s, i) => {
    const color = escapeXml(s.color);
    const dash = s.dash ? ` stroke-dasharray="${escapeXml(s.dash)}"` : "";
    const label = escapeXml(s.label);
    for (const seg of segs[i]) {
      if (seg.length > 1) {
        const pts = vertices(seg, s.shape ?? "linear").map((p) =>
          `${num(sx.px(p.x))},${num(sy.px(p.y))}`
        );
        out.push(
          `<polyline points="${
            pts.join(" ")
          }" fill="none" stroke="${color}" stroke-width="2"${dash}>` +
            `<title>${label}</title></polyline>`,
        );
      }
      if (s.markers || seg.length === 1) {
        for (const p of seg) {
          out.push(
            `<circle cx="${num(sx.px(p.x))}" cy="${num(sy.px(p.y))}" r="3" fill="${color}"/>`,
          );
        }
      }
    }
    const y = height + 8 + i * LEGEND_ROW + LEGEND_ROW / 2;
    out.push(
      `<line x1="${left}" y1="${y}" x2="${
        left + 28
      }" y2="${y}" stroke="${color}" stroke-width="2"${dash}/>`,
      text(left + 36, y + 4, s.label),
    );
  });
  out.push("</svg>");
  return out.join("\n");
}

/** One certified-accuracy curve. */
export interface AccuracyCurve {
  label: string;
  color: string;
  points: readonly RadiusAccuracy[];
  dash?: string;
}

/**
 * Certified accuracy against L2 radius, as the MACER paper's figures: one curve per
 * certification, x ticks at MACER's radii 0, 0.25, ..., 2.25, y from 0 to 1.
 *
 * @param curves the curves
 * @param shape straight segments between radii (default) or steps
 * @returns an `<svg>` element
 */
export function certifiedAccuracyChart(
  curves: readonly AccuracyCurve[],
  shape: "linear" | "step" = "linear",
): string {
  return lineChart(
    curves.map((c) => ({
      label: c.label,
      color: c.color,
      dash: c.dash,
      markers: true,
      shape,
      points: [...c.points].sort((a, b) => a.radius - b.radius).map((p) => ({
        x: p.radius,
        y: p.accuracy,
      })),
    })),
    {
      title: "Certified accuracy",
      x: { label: "L2 radius", ticks: DEFAULT_RADII },
      y: { label: "certified accuracy", ticks: [0, 0.2, 0.4, 0.6, 0.8, 1] },
    },
  );
}

/**
 * Classification and robustness loss per epoch of one training stage.
 *
 * @param epochs the stage's epochs
 * @param title chart title
 * @returns an `<svg>` element
 */
export function lossChart(epochs: readonly EpochSummary[], title: string): string {
  const series = (key: "classification" | "robustness", color: string): Series => ({
    label: `${key} loss`,
    color,
    points: epochs.map((e) => ({ x: e.epoch, y: e[key] })),
  });
  return lineChart([series("classification", PALETTE[0]), series("robustness", PALETTE[1])], {
    title,
    x: { label: "epoch", integer: true },
    y: { label: "loss per image", includeZero: true },
    width: 480,
    height: 300,
  });
}

/**
 * Wall-clock seconds per epoch of one training stage.
 *
 * @param epochs the stage's epochs
 * @param title chart title
 * @returns an `<svg>` element
 */
export function secondsChart(epochs: readonly EpochSummary[], title: string): string {
  return lineChart([{
    label: "seconds per epoch",
    color: PALETTE[2],
    points: epochs.map((e) => ({ x: e.epoch, y: e.seconds ?? null })),
  }], {
    title,
    x: { label: "epoch", integer: true },
    y: { label: "seconds", includeZero: true },
    width: 480,
    height: 300,
  });
}
