/**
 * Reports of pipeline runs: the run summary format (`summary.json`), SVG charts of certified
 * accuracy, losses and epoch times, and the self-contained HTML report.
 *
 * @module
 */

export * from "./summary.ts";
export * from "./svg.ts";
export * from "./html.ts";
