/**
 * Summary metrics of a certification run: certified accuracy at a grid of radii and the
 * average certified radius (ACR), as MACER's `rs/certify.py` and Cohen's analysis compute
 * them.
 *
 * @module
 */

import { ABSTAIN } from "./certify.ts";

/** Result of certifying one image. */
export interface ImageResult {
  /** True label. */
  label: number;
  /** Predicted class, -1 for abstain. */
  prediction: number;
  /** Certified radius (0 when abstaining). */
  radius: number;
  /** Whether prediction equals label; derived from them when omitted. */
  correct?: boolean;
}

/** Certified accuracy at one radius. */
export interface RadiusAccuracy {
  /** The radius r. */
  radius: number;
  /** Images that are correct with radius >= r. */
  count: number;
  /** count / total (0 when there are no images). */
  accuracy: number;
}

/** Everything the summary needs. */
export interface CertifyMetrics {
  /** Certified accuracy at each requested radius. */
  certifiedAccuracy: RadiusAccuracy[];
  /** Mean radius over all images, wrong or abstained ones counting 0. */
  acr: number;
  /** Image counts by outcome. */
  counts: { total: number; correct: number; wrong: number; abstained: number };
}

/** MACER's grid: 0, 0.25, ..., 2.25. */
export const DEFAULT_RADII: readonly number[] = Object.freeze(
  Array.from({ length: 10 }, (_, i) => i * 0.25),
);

/** Whether a result counts as correct (abstentions never do). */
export function isCorrect(r: ImageResult): boolean {
  return r.correct ?? (r.prediction !== ABSTAIN && r.prediction === r.label);
}

/**
 * The value MACER stores per image in its MAT file: the radius when correct, else -1.
 *
 * @param r one image's result
 * @returns radius or -1
 */
export function matRadius(r: ImageResult): number {
  return isCorrect(r) ? r.radius : -1;
}

/**
 * Certified accuracy at each radius, ACR and outcome counts.
 *
 * @param results per-image results
 * @param radii radii at which to report certified accuracy (default 0, 0.25, ..., 2.25)
 * @returns the metrics
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { computeMetrics } from "./metrics.ts";
 * const m = computeMetrics([{ label: 1, prediction: 1, radius: 0.5 }, { label: 2, prediction: -1, radius: 0 }]);
 * assert.ok(m.acr === 0.25 && m.certifiedAccuracy[2].accuracy === 0.5);
 * ```
 */
export function computeMetrics(
  results: readonly ImageResult[],
  radii: readonly number[] = DEFAULT_RADII,
): CertifyMetrics {
  const total = results.length;
  let correct = 0, abstained = 0, radiusSum = 0;
  const hits = new Array<number>(radii.length).fill(0);
  for (const r of results) {
    if (r.prediction === ABSTAIN) abstained++;
    if (!isCorrect(r)) continue;
    correct++;
    radiusSum += r.radius;
    for (let j = 0; j < radii.length; j++) if (r.radius >= radii[j]) hits[j]++;
  }
  return {
    certifiedAccuracy: radii.map((radius, j) => ({
      radius,
      count: hits[j],
      accuracy: total === 0 ? 0 : hits[j] / total,
    })),
    acr: total === 0 ? 0 : radiusSum / total,
    counts: { total, correct, wrong: total - correct - abstained, abstained },
  };
}
