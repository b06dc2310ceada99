/**
 * Described settings: one description of each field (type, range, default,
 * meaning) from which come the validator (every problem at once, each with its
 * JSON path and what was expected), the defaults, the JSON Schema shipped for
 * editors, and the reference table of the README. Nothing else states them.
 *
 * @module
 */

interface Base {
  /** What the field means, for the schema and the README. */
  doc: string;
}
/** A number; `min`/`max` inclusive unless `above` (exclusive lower bound) is used. */
export interface NumberSpec extends Base {
  type: "number";
  integer?: boolean;
  min?: number;
  above?: number;
  max?: number;
  below?: number;
  default?: number;
}
export interface StringSpec extends Base {
  type: "string";
  enum?: readonly string[];
  default?: string;
}
export interface BooleanSpec extends Base {
  type: "boolean";
  default?: boolean;
}
export interface ArraySpec extends Base {
  type: "array";
  items: Spec;
  minItems?: number;
  default?: unknown[];
}
/** An object with named fields; unknown keys are refused. */
export interface ObjectSpec extends Base {
  type: "object";
  fields: Record<string, Spec>;
  required?: readonly string[];
}
/** A map from free keys to values of one spec (e.g. a matrix of parameter lists). */
export interface MapSpec extends Base {
  type: "map";
  values: Spec;
}
/** One of several object specs, chosen by the string in field `tag`. */
export interface TaggedSpec extends Base {
  type: "tagged";
  tag: string;
  variants: Record<string, ObjectSpec>;
}
/** Any JSON value (passed through). */
export interface AnySpec extends Base {
  type: "any";
}
export type Spec =
  | NumberSpec
  | StringSpec
  | BooleanSpec
  | ArraySpec
  | ObjectSpec
  | MapSpec
  | TaggedSpec
  | AnySpec;

/** One problem found in a value, at a JSON path such as `stages[1].sigma`. */
export interface Problem {
  path: string;
  message: string;
}

/** `path: message`, as printed. */
export function formatProblem(p: Problem): string {
  return p.path === "" ? p.message : `${p.path}: ${p.message}`;
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? "an object" : `${typeof v}`;
}

function join(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  const safe = /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? key : JSON.stringify(key);
  return path === "" ? safe : /^"/.test(safe) ? `${path}[${safe}]` : `${path}.${safe}`;
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/** The closest of `options` to `word`, when close enough to be a likely typo. */
export function didYouMean(word: string, options: readonly string[]): string | undefined {
  let best: string | undefined, bestD = Infinity;
  for (const o of options) {
    const d = distance(word.toLowerCase(), o.toLowerCase());
    if (d < bestD) [best, bestD] = [o, d];
  }
  return bestD <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function numberExpectation(s: NumberSpec): string {
  const bounds = [
    s.above !== undefined ? `> ${s.above}` : "",
    s.min !== undefined ? `>= ${s.min}` : "",
    s.below !== undefined ? `< ${s.below}` : "",
    s.max !== undefined ? `<= ${s.max}` : "",
  ].filter((b) => b !== "");
  return `${s.integer ? "a whole number" : "a number"}${bounds.length ? " " : ""}${
    bounds.join(" and ")
  }`;
}

/**
 * Checks `value` against `spec` and fills in defaults.
 *
 * @param value parsed JSON
 * @param spec the description
 * @param path JSON path of `value` (for messages)
 * @param problems collects every problem found
 * @returns the value with defaults filled in (undefined where it was missing with no default)
 */
export function check(value: unknown, spec: Spec, path: string, problems: Problem[]): unknown {
  const bad = (message: string) => {
    problems.push({ path, message });
    return value;
  };
  switch (spec.type) {
    case "any":
      return value;
    case "number": {
      if (typeof value !== "number" || !Number.isFinite(value)) {
        return bad(`expected ${numberExpectation(spec)}, got ${show(value)}`);
      }
      const ok = (!spec.integer || Number.isInteger(value)) &&
        (spec.min === undefined || value >= spec.min) &&
        (spec.above === undefined || value > spec.above) &&
        (spec.max === undefined || value <= spec.max) &&
        (spec.below === undefined || value < spec.below);
      return ok ? value : bad(`expected ${numberExpectation(spec)}, got ${show(value)}`);
    }
    case "string":
      if (typeof value !== "string") return bad(`expected a string, got ${show(value)}`);
      if (spec.enum && !spec.enum.includes(value)) {
        const guess = didYouMean(value, spec.enum);
        return bad(
          `expected one of ${spec.enum.map((e) => show(e)).join(", ")}, got ${show(value)}` +
            (guess ? ` (did you mean ${show(guess)}?)` : ""),
        );
      }
      return value;
    case "boolean":
      return typeof value === "boolean" ? value : bad(`expected true or false, got ${show(value)}`);
    case "array": {
      if (!Array.isArray(value)) return bad(`expected an array, got ${typeName(value)}`);
      if (spec.minItems !== undefined && value.length < spec.minItems) {
        return bad(`expected at least ${spec.minItems} item(s), got ${value.length}`);
      }
      return value.map((v, i) => check(v, spec.items, join(path, i), problems));
    }
    case "map": {
      if (!isPlainObject(value)) return bad(`expected an object, got ${typeName(value)}`);
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, check(v, spec.values, join(path, k), problems)]),
      );
    }
    case "object":
      return checkObject(value, spec, path, problems);
    case "tagged": {
      if (!isPlainObject(value)) return bad(`expected an object, got ${typeName(value)}`);
      const tag = value[spec.tag];
      const names = Object.keys(spec.variants);
      if (typeof tag !== "string" || !(tag in spec.variants)) {
        const guess = typeof tag === "string" ? didYouMean(tag, names) : undefined;
        problems.push({
          path: join(path, spec.tag),
          message: `expected one of ${names.map((n) => show(n)).join(", ")}, got ${show(tag)}` +
            (guess ? ` (did you mean ${show(guess)}?)` : ""),
        });
        return value;
      }
      return checkObject(value, spec.variants[tag], path, problems);
    }
  }
}

function checkObject(
  value: unknown,
  spec: ObjectSpec,
  path: string,
  problems: Problem[],
): Record<string, unknown> | unknown {
  if (!isPlainObject(value)) {
    problems.push({ path, message: `expected an object, got ${typeName(value)}` });
    return value;
  }
  const out: Record<string, unknown> = {};
  const known = Object.keys(spec.fields);
  for (const key of Object.keys(value)) {
    if (key in spec.fields || key === "$schema") continue;
    const guess = didYouMean(key, known);
    problems.push({
      path: join(path, key),
      message: `unknown key${guess ? ` (did you mean "${guess}"?)` : ""}; expected one of ${
        known.join(", ")
      }`,
    });
  }
  for (const [key, field] of Object.entries(spec.fields)) {
    const v = value[key];
    if (v === undefined) {
      if (spec.required?.includes(key)) {
        problems.push({ path: join(path, key), message: `is required (${field.doc})` });
      } else if ("default" in field && field.default !== undefined) {
        out[key] = structuredClone(field.default);
      }
      continue;
    }
    out[key] = check(v, field, join(path, key), problems);
  }
  return out;
}

/** A JSON object that is not an array or null. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The JSON Schema (draft 2020-12) of a spec. */
export function toJsonSchema(spec: Spec): Record<string, unknown> {
  const common: Record<string, unknown> = { description: spec.doc };
  if ("default" in spec && spec.default !== undefined) common.default = spec.default;
  switch (spec.type) {
    case "any":
      return common;
    case "number":
      return {
        ...common,
        type: spec.integer ? "integer" : "number",
        ...(spec.min !== undefined ? { minimum: spec.min } : {}),
        ...(spec.above !== undefined ? { exclusiveMinimum: spec.above } : {}),
        ...(spec.max !== undefined ? { maximum: spec.max } : {}),
        ...(spec.below !== undefined ? { exclusiveMaximum: spec.below } : {}),
      };
    case "string":
      return { ...common, type: "string", ...(spec.enum ? { enum: [...spec.enum] } : {}) };
    case "boolean":
      return { ...common, type: "boolean" };
    case "array":
      return {
        ...common,
        type: "array",
        items: toJsonSchema(spec.items),
        ...(spec.minItems !== undefined ? { minItems: spec.minItems } : {}),
      };
    case "map":
      return { ...common, type: "object", additionalProperties: toJsonSchema(spec.values) };
    case "object":
      return objectSchema(spec);
    case "tagged":
      return {
        ...common,
        type: "object",
        required: [spec.tag],
        oneOf: Object.entries(spec.variants).map(([name, v]) => {
          const s = objectSchema(v);
          const props = s.properties as Record<string, unknown>;
          props[spec.tag] = { const: name, description: v.doc };
          return { ...s, required: [...new Set([spec.tag, ...(v.required ?? [])])] };
        }),
      };
  }
}

function objectSchema(spec: ObjectSpec): Record<string, unknown> {
  return {
    description: spec.doc,
    type: "object",
    properties: {
      $schema: { type: "string" },
      ...Object.fromEntries(Object.entries(spec.fields).map(([k, f]) => [k, toJsonSchema(f)])),
    },
    ...(spec.required?.length ? { required: [...spec.required] } : {}),
    additionalProperties: false,
  };
}

/** The defaults of an object spec's fields that have one. */
export function defaultsOf(spec: ObjectSpec): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(spec.fields).flatMap(([k, f]) =>
      "default" in f && f.default !== undefined ? [[k, structuredClone(f.default)]] : []
    ),
  );
}
