/**
 * Seeded model checkpoints written by PyTorch at test time
 * (scripts/fixtures/make_pth_fixtures.py), for the .pth loading tests.
 *
 * @module
 */
import assert from "node:assert/strict";
import { python } from "../_tools.ts";

const script = new URL("../../scripts/fixtures/make_pth_fixtures.py", import.meta.url).pathname;

/** Writes a checkpoint with PyTorch; returns its path, the inputs and PyTorch's logits. */
export async function torchCheckpoint(
  dir: string,
  arch: string,
  style: "macer" | "cohen" | "plain",
  format: "zip" | "legacy",
): Promise<{ path: string; input: number[]; shape: number[]; logits: number[][] }> {
  const path = `${dir}/${arch}-${style}-${format}.pth${style === "cohen" ? ".tar" : ""}`;
  const out = await new Deno.Command(python, {
    args: [script, "model", arch, style, format, path],
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return { path, ...JSON.parse(new TextDecoder().decode(out.stdout)) };
}
