/**
 * What is generated from the pipeline format's one description: the JSON
 * Schema shipped as `pipelines/schema.json` (editors complete and check
 * pipeline files with it) and the key reference of the README. Tests keep
 * both files equal to what these functions return.
 *
 * @module
 */
import { type ObjectSpec, type Spec, toJsonSchema } from "../spec/spec.ts";
import { PIPELINE_SPEC } from "./schema.ts";

/** The JSON Schema of a pipeline file, as shipped. */
export function pipelineJsonSchema(): Record<string, unknown> {
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "MACER pipeline",
    ...toJsonSchema(PIPELINE_SPEC),
  };
}

/** The text of `pipelines/schema.json`. */
export function pipelineJsonSchemaText(): string {
  return JSON.stringify(pipelineJsonSchema(), null, 2) + "\n";
}

function typeText(s: Spec): string {
  switch (s.type) {
    case "number": {
      const b = [
        s.above !== undefined ? `> ${s.above}` : "",
        s.min !== undefined ? `>= ${s.min}` : "",
        s.below !== undefined ? `< ${s.below}` : "",
        s.max !== undefined ? `<= ${s.max}` : "",
      ].filter(Boolean).join(", ");
      return `${s.integer ? "integer" : "number"}${b ? ` (${b})` : ""}`;
    }
    case "string":
      return s.enum ? s.enum.map((e) => `\`${e}\``).join(" \\| ") : "string";
    case "array":
      return `list of ${typeText(s.items)}`;
    case "map":
      return "object of lists";
    default:
      return s.type;
  }
}

function defaultText(s: Spec): string {
  return "default" in s && s.default !== undefined ? `\`${JSON.stringify(s.default)}\`` : "";
}

function rows(prefix: string, spec: ObjectSpec): string[] {
  const out: string[] = [];
  for (const [key, f] of Object.entries(spec.fields)) {
    const path = `${prefix}${key}`;
    if (f.type === "object") {
      out.push(`| \`${path}\` | object | | ${f.doc} |`);
      out.push(...rows(`${path}.`, f));
    } else if (f.type === "array" && f.items.type === "tagged") {
      out.push(`| \`${path}\` | list of stages | | ${f.doc} |`);
      for (const [kind, v] of Object.entries(f.items.variants)) {
        const fields = {
          ...v,
          fields: Object.fromEntries(
            Object.entries(v.fields).filter(([k]) => k !== "kind"),
          ),
        };
        out.push(`| \`${path}[].kind: "${kind}"\` | | | ${v.doc} |`);
        out.push(...rows(`${path}[${kind}].`, fields));
      }
    } else if (f.type === "array" && f.items.type === "object") {
      out.push(`| \`${path}\` | list | | ${f.doc} |`);
      out.push(...rows(`${path}[].`, f.items));
    } else {
      out.push(`| \`${path}\` | ${typeText(f)} | ${defaultText(f)} | ${f.doc} |`);
    }
  }
  return out;
}

/** The README's reference of every key: path, type, default, meaning. */
export function keyReference(): string {
  return [
    "| key | type | default | meaning |",
    "| --- | --- | --- | --- |",
    ...rows("", PIPELINE_SPEC),
  ].join("\n") + "\n";
}
