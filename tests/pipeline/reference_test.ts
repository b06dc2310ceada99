import assert from "node:assert/strict";
import { keyReference, pipelineJsonSchemaText } from "../../src/pipeline/reference.ts";
import { planRuns } from "../../src/pipeline/load.ts";

const root = new URL("../../", import.meta.url).pathname;

/** Table rows as trimmed cells (deno fmt pads the README's tables; the content must agree). */
function cells(table: string): string[][] {
  return table.split("\n").filter((l) => l.startsWith("|") && !/^\|[\s-|]+\|$/.test(l))
    .map((l) => l.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim()));
}

Deno.test("pipelines/schema.json is the schema generated from the format's description", async () => {
  assert.equal(await Deno.readTextFile(`${root}pipelines/schema.json`), pipelineJsonSchemaText());
});

Deno.test("the README's key reference is the one generated from the format's description", async () => {
  const readme = await Deno.readTextFile(`${root}README.md`);
  const m = /<!-- pipeline-keys:begin -->\n([\s\S]*?)<!-- pipeline-keys:end -->/.exec(readme);
  assert.ok(m, "README.md has the pipeline-keys markers");
  const got = cells(m[1]);
  assert.deepEqual(got, cells(keyReference()));
  assert.ok(got.some((r) => r[0] === "`stages[train].gauss_num`" && r[2] === "`16`"));
  // A field several methods share names each method's default in its description.
  assert.ok(got.some((r) => r[0] === "`stages[train].lbd`" && /macer, default 12/.test(r[3])));
});

Deno.test("every shipped pipeline names the schema and validates", async () => {
  const files = [...Deno.readDirSync(`${root}pipelines`)].map((e) => e.name)
    .filter((n) => n.endsWith(".json") && n !== "schema.json").sort();
  assert.ok(files.includes("mnist-quickstart.json") && files.includes("cifar10-sigma100.json"));
  for (const f of files) {
    const doc = JSON.parse(await Deno.readTextFile(`${root}pipelines/${f}`));
    assert.equal(doc.$schema, "./schema.json", f);
    // Data files are not here for most of them: the format and the references are checked.
    const { runs } = await planRuns(`${root}pipelines/${f}`, [], false);
    assert.ok(runs.length >= 1, f);
  }
  const sigma100 = (await planRuns(`${root}pipelines/cifar10-sigma100.json`, [], false)).runs[0];
  const [train, certify] = sigma100.pipeline.stages;
  assert.ok(train.kind === "train" && train.lbd === 4 && train.sigma === 1 && train.epochs === 440);
  assert.ok(certify.kind === "certify" && certify.sigma === 1 && certify.start_img === 500);
  const ablation = await planRuns(`${root}pipelines/cifar10-ablation-lambda.json`, [], false);
  assert.deepEqual(
    ablation.runs.map((r) => (r.pipeline.stages[0] as { lbd: number }).lbd),
    [0, 4, 12, 16],
  );
});

Deno.test("the quickstart pipeline validates with its data (the embedded digits)", async () => {
  const { runs } = await planRuns(`${root}pipelines/mnist-quickstart.json`);
  assert.equal(runs.length, 1);
  assert.equal(runs[0].pipeline.model, "lenet");
  assert.deepEqual(runs[0].pipeline.stages.map((s) => s.kind), ["train", "certify", "report"]);
});
