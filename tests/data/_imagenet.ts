/**
 * A tiny ImageNet validation tree and torchvision's view of it, written at test
 * time by scripts/fixtures/make_imagenet_tree.py.
 *
 * @module
 */
import assert from "node:assert/strict";
import { python } from "../_tools.ts";

const script = new URL("../../scripts/fixtures/make_imagenet_tree.py", import.meta.url).pathname;

/** torchvision's ImageFolder listing of the tree. */
export interface Index {
  classes: string[];
  images: { file: string; label: number; width: number; height: number }[];
}

/** Writes the tree into a new temporary folder; returns it and torchvision's index. */
export async function imagenetTree(): Promise<{ root: string; index: Index }> {
  const root = await Deno.makeTempDir({ prefix: "imagenet-" });
  const out = await new Deno.Command(python, { args: [script, root] }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return { root, index: JSON.parse(await Deno.readTextFile(`${root}/index.json`)) };
}
