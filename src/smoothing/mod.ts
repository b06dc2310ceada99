/**
 * Randomized smoothing: Cohen et al.'s CERTIFY and PREDICT, MACER's soft certification,
 * the confidence bounds they use, the normal quantile, and summary metrics.
 *
 * @module
 */

export * from "./normal.ts";
export * from "./beta.ts";
export * from "./bounds.ts";
export * from "./certify.ts";
export * from "./metrics.ts";
