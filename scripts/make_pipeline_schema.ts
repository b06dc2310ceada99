/**
 * Regenerates `pipelines/schema.json` and the key reference in README.md
 * (between its `pipeline-keys` markers) from the pipeline format's
 * description in `src/pipeline/schema.ts`.
 *
 * ```sh
 * deno run -A scripts/make_pipeline_schema.ts
 * ```
 *
 * @module
 */
import { keyReference, pipelineJsonSchemaText } from "../src/pipeline/reference.ts";

const root = new URL("..", import.meta.url).pathname;
await Deno.writeTextFile(`${root}pipelines/schema.json`, pipelineJsonSchemaText());
const readme = await Deno.readTextFile(`${root}README.md`);
const begin = "<!-- pipeline-keys:begin -->\n";
const end = "<!-- pipeline-keys:end -->";
const a = readme.indexOf(begin), b = readme.indexOf(end);
if (a < 0 || b < a) throw new Error("README.md has no pipeline-keys markers");
await Deno.writeTextFile(
  `${root}README.md`,
  readme.slice(0, a + begin.length) + keyReference() + readme.slice(b),
);
console.log("wrote pipelines/schema.json and the key reference in README.md");
