import assert from "node:assert/strict";
import { parseRunSummary, readRunSummary, SummaryError } from "../../src/report/summary.ts";
import { exampleSummary, runDir } from "./_summaries.ts";

Deno.test("readRunSummary() reads back the contract's example, stage by stage", async () => {
  const want = exampleSummary();
  const dir = await runDir(want);
  try {
    const got = await readRunSummary(dir);
    assert.deepEqual(got, want);
    assert.deepEqual(await readRunSummary(`${dir}/`), want);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readRunSummary() names the file when it is missing or not JSON", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => readRunSummary(dir),
      (e: Error) =>
        e instanceof SummaryError &&
        e.message === `${dir}/summary.json: no such file (is this a run directory?)`,
    );
    await Deno.writeTextFile(`${dir}/summary.json`, "{ not json");
    await assert.rejects(
      () => readRunSummary(dir),
      new RegExp(`^SummaryError: ${dir}/summary.json: not valid JSON`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseRunSummary() refuses another format or version, naming the field", () => {
  const ok = exampleSummary();
  assert.throws(
    () => parseRunSummary({ ...ok, format: "macer-summary" }, "a.json"),
    { message: `a.json: format: expected "macer-pipeline-summary", got "macer-summary"` },
  );
  assert.throws(
    () => parseRunSummary({ ...ok, version: 2 }, "a.json"),
    { message: "a.json: version: expected 1, got 2 (unsupported version)" },
  );
  assert.throws(() => parseRunSummary([], "a.json"), {
    message: "a.json: expected an object, got an array",
  });
});

Deno.test("parseRunSummary() names the path of a missing or mistyped field", () => {
  // deno-lint-ignore no-explicit-any
  type Json = any; // the tests break the summary's types on purpose
  const bad = (edit: (s: Json) => void) => {
    const s: Json = structuredClone(exampleSummary());
    edit(s);
    return () => parseRunSummary(s, "run/summary.json");
  };
  assert.throws(bad((s) => delete s.stages[1].modes.hard.acr), {
    message: "run/summary.json: stages[1].modes.hard.acr: expected a finite number, got nothing",
  });
  assert.throws(bad((s) => s.stages[1].modes.hard.certifiedAccuracy[3].accuracy = "0.5"), {
    message:
      `run/summary.json: stages[1].modes.hard.certifiedAccuracy[3].accuracy: expected a finite number, got "0.5"`,
  });
  assert.throws(bad((s) => s.stages[0].epochs[1].seconds = null), {
    message: "run/summary.json: stages[0].epochs[1].seconds: expected a finite number, got null",
  });
  assert.throws(bad((s) => s.stages[2].kind = "evaluate"), {
    message:
      `run/summary.json: stages[2].kind: unknown stage kind "evaluate" (expected train, certify or predict)`,
  });
  assert.throws(bad((s) => s.stages[1].modes = { medium: {} }), {
    message: "run/summary.json: stages[1].modes.medium: unknown mode (expected hard or soft)",
  });
  assert.throws(bad((s) => s.stages[1].modes = {}), {
    message: "run/summary.json: stages[1].modes: expected hard, soft or both",
  });
  assert.throws(bad((s) => s.stages = {}), {
    message: "run/summary.json: stages: expected an array, got an object",
  });
});

Deno.test("parseRunSummary() takes null losses (NaN written as JSON) and one mode alone", () => {
  const s = structuredClone(exampleSummary());
  const train = s.stages[0] as { epochs: { classification: number | null }[] };
  train.epochs[1].classification = null;
  const cert = s.stages[1] as { modes: Record<string, unknown> };
  delete cert.modes.hard;
  const got = parseRunSummary(JSON.parse(JSON.stringify(s)), "s.json");
  assert.deepEqual(got, s);
});
