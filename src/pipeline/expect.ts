/**
 * The `expect` block: conditions a run must meet (users gate their CI on a
 * pipeline with it). Each failed one is described; none failing means success.
 *
 * @module
 */
import type { RunSummary } from "../report/summary.ts";
import type { Pipeline } from "./validate.ts";

async function sha256Hex(path: string): Promise<string> {
  const bytes = await Deno.readFile(path);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Checks every expectation of `p` against a run's summary.
 *
 * @param p the pipeline
 * @param summary the run's summary
 * @param summaryPath the summary.json written (for its digest)
 * @returns a description of each expectation that failed
 */
export async function checkExpectations(
  p: Pipeline,
  summary: RunSummary,
  summaryPath: string,
): Promise<string[]> {
  const failed: string[] = [];
  for (const [i, e] of p.expect.entries()) {
    const at = `expect[${i}]`;
    if (e.summary_sha256 !== undefined) {
      const got = await sha256Hex(summaryPath);
      if (got !== e.summary_sha256.toLowerCase()) {
        failed.push(`${at}: summary.json has SHA-256 ${got}, expected ${e.summary_sha256}`);
      }
      continue;
    }
    const st = summary.stages.find((s) => s.name === e.stage);
    if (st?.kind === "predict") {
      if (e.accuracy_at_least !== undefined && !(st.accuracy >= e.accuracy_at_least)) {
        failed.push(`${at}: ${st.name} accuracy ${st.accuracy} < ${e.accuracy_at_least}`);
      }
      continue;
    }
    if (st?.kind !== "certify") {
      failed.push(`${at}: stage ${e.stage} has no certification results`);
      continue;
    }
    const m = st.modes[e.mode];
    if (m === undefined) {
      failed.push(`${at}: ${st.name} did not certify in ${e.mode} mode`);
      continue;
    }
    if (e.acr_at_least !== undefined && !(m.acr >= e.acr_at_least)) {
      failed.push(`${at}: ${st.name} ${e.mode} ACR ${m.acr} < ${e.acr_at_least}`);
    }
    if (e.accuracy !== undefined && e.radius !== undefined) {
      const total = m.counts.total;
      const count = m.certifiedAccuracy.find((c) => Math.abs(c.radius - e.radius!) < 1e-9)?.count;
      const acc = count === undefined
        ? m.certifiedAccuracy.filter((c) => c.radius >= e.radius!).at(0)?.count
        : count;
      const value = acc === undefined ? NaN : acc / total;
      if (!(Math.abs(value - e.accuracy) <= e.tolerance)) {
        failed.push(
          `${at}: ${st.name} ${e.mode} certified accuracy at radius ${e.radius} is ${value}, ` +
            `expected ${e.accuracy} +- ${e.tolerance}`,
        );
      }
    }
    if (e.accuracy_at_least !== undefined) {
      const acc = m.counts.correct / m.counts.total;
      if (!(acc >= e.accuracy_at_least)) {
        failed.push(`${at}: ${st.name} ${e.mode} accuracy ${acc} < ${e.accuracy_at_least}`);
      }
    }
  }
  return failed;
}
