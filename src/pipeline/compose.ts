/**
 * Composition of pipeline files before validation: `extends` chains (deep
 * merge, arrays replaced, relative paths resolved against the file that names
 * them), `--set path=value` overrides, and `matrix` expansion into one
 * pipeline per combination.
 *
 * @module
 */
import { InputError } from "../errors.ts";
import { isPlainObject } from "../spec/spec.ts";
import { PIPELINE_SPEC, STAGE_VARIANTS } from "./schema.ts";

/** A JSON object. */
export type Json = Record<string, unknown>;

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

/** `path` resolved against folder `dir` (absolute paths are kept). */
export function resolvePath(dir: string, path: string): string {
  if (path.startsWith("/")) return path;
  const parts = `${dir}/${path}`.split("/");
  const out: string[] = [];
  for (const p of parts) {
    if (p === "" && out.length > 0) continue;
    if (p === ".") continue;
    if (p === ".." && out.length > 0 && out[out.length - 1] !== "..") out.pop();
    else out.push(p);
  }
  return out.join("/") || ".";
}

/** Reads and parses one JSON file; errors name the file and the position. */
export async function readJsonFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new InputError(
      e instanceof Deno.errors.NotFound
        ? `${path}: no such pipeline file`
        : `${path}: cannot read (${(e as Error).message})`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/** Whether a stage's `init` names a file (rather than a stage). */
export function isFileRef(v: string): boolean {
  return v.includes("/") || v.endsWith(".safetensors");
}

/** Paths inside a pipeline that name files, rewritten relative to the file's folder. */
function resolveFilePaths(doc: Json, dir: string): Json {
  const out = structuredClone(doc);
  if (Array.isArray(out.stages)) {
    for (const st of out.stages) {
      if (!isPlainObject(st)) continue;
      if (typeof st.checkpoint === "string") st.checkpoint = resolvePath(dir, st.checkpoint);
      if (typeof st.init === "string" && isFileRef(st.init)) st.init = resolvePath(dir, st.init);
    }
  }
  return out;
}

/** Deep merge: objects merge key by key, everything else (arrays included) is replaced. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return structuredClone(over);
  const out: Json = structuredClone(base);
  for (const [k, v] of Object.entries(over)) out[k] = k in out ? deepMerge(out[k], v) : v;
  return out;
}

/**
 * A pipeline file with its `extends` chain merged in.
 *
 * @throws {InputError} on a missing or unreadable file, bad JSON, or a cycle
 */
export async function loadComposed(path: string, chain: string[] = []): Promise<Json> {
  if (chain.includes(path)) {
    throw new InputError(`extends: cycle ${[...chain, path].join(" -> ")}`);
  }
  const doc = await readJsonFile(path);
  if (!isPlainObject(doc)) throw new InputError(`${path}: a pipeline must be a JSON object`);
  const here = resolveFilePaths(doc, dirOf(path));
  if (here.extends === undefined) return here;
  if (typeof here.extends !== "string") {
    throw new InputError(
      `${path}: extends: expected a file name, got ${JSON.stringify(doc.extends)}`,
    );
  }
  const target = resolvePath(dirOf(path), here.extends);
  let base: Json;
  try {
    base = await loadComposed(target, [...chain, path]);
  } catch (e) {
    if (e instanceof InputError && !e.message.startsWith("extends: cycle")) {
      throw new InputError(`${path}: extends "${here.extends}": ${e.message}`);
    }
    throw e;
  }
  const { extends: _, ...rest } = here;
  return deepMerge(base, rest) as Json;
}

type Key = string | number;

/** `stages[0].sigma` -> ["stages", 0, "sigma"]. */
export function parsePath(path: string): Key[] {
  const keys: Key[] = [];
  const re = /([^.[\]]+)|\[(\d+)\]/g;
  let m: RegExpExecArray | null, at = 0;
  while ((m = re.exec(path)) !== null) {
    const gap = path.slice(at, m.index);
    if (gap !== "" && gap !== ".") throw new InputError(`bad path "${path}"`);
    keys.push(m[2] !== undefined ? Number(m[2]) : m[1]);
    at = re.lastIndex;
  }
  if (keys.length === 0 || at !== path.length) throw new InputError(`bad path "${path}"`);
  return keys;
}

/** Sets the value at `path` in `doc`, creating objects on the way. */
export function setPath(doc: Json, path: string, value: unknown): void {
  const keys = parsePath(path);
  let node: unknown = doc;
  for (let i = 0; i < keys.length - 1; i++) {
    const k = keys[i];
    const container = node as Record<Key, unknown>;
    if (typeof k === "number" && !Array.isArray(node)) {
      throw new InputError(`${path}: ${keys.slice(0, i).join(".")} is not an array`);
    }
    if (typeof k === "number" && k >= (node as unknown[]).length) {
      throw new InputError(`${path}: index ${k} is past the end of the array`);
    }
    if (container[k] === undefined) container[k] = typeof keys[i + 1] === "number" ? [] : {};
    node = container[k];
    if (typeof node !== "object" || node === null) {
      throw new InputError(`${path}: cannot set a field inside ${JSON.stringify(node)}`);
    }
  }
  (node as Record<Key, unknown>)[keys[keys.length - 1]] = value;
}

/** A `--set` value: JSON where it parses, else the text as a string. */
export function parseSetValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/**
 * Applies `path=value` overrides.
 *
 * @throws {InputError} on an override without `=` or with a bad path
 */
export function applySets(doc: Json, sets: readonly string[]): Json {
  const out = structuredClone(doc);
  for (const s of sets) {
    const eq = s.indexOf("=");
    if (eq <= 0) throw new InputError(`--set ${s}: expected path=value`);
    setPath(out, s.slice(0, eq).trim(), parseSetValue(s.slice(eq + 1)));
  }
  return out;
}

/** One pipeline of a matrix: the values chosen, and the name suffix they give. */
export interface Expanded {
  doc: Json;
  /** `sigma=0.5,lbd=4`, empty without a matrix. */
  label: string;
  /** Chosen value per matrix key. */
  values: Record<string, unknown>;
}

const STAGE_FIELDS = new Set(Object.values(STAGE_VARIANTS).flatMap((v) => Object.keys(v.fields)));

function applyMatrixValue(doc: Json, key: string, value: unknown): void {
  if (/[.[]/.test(key)) return setPath(doc, key, value);
  if (key in PIPELINE_SPEC.fields) return void (doc[key] = value);
  if (!STAGE_FIELDS.has(key)) {
    throw new InputError(
      `matrix.${key}: not a path and not a field of any stage (write a path such as stages[0].${key})`,
    );
  }
  const stages = Array.isArray(doc.stages) ? doc.stages : [];
  let applied = 0;
  for (const st of stages) {
    if (!isPlainObject(st)) continue;
    const variant = STAGE_VARIANTS[String(st.kind)];
    if (variant && key in variant.fields) {
      st[key] = structuredClone(value);
      applied++;
    }
  }
  if (applied === 0) throw new InputError(`matrix.${key}: no stage has a field "${key}"`);
}

/**
 * One pipeline per combination of the `matrix` values (the first key varies slowest).
 *
 * @throws {InputError} on a matrix key that names nothing
 */
export function expandMatrix(doc: Json): Expanded[] {
  const { matrix, ...rest } = doc;
  if (matrix === undefined) return [{ doc: rest, label: "", values: {} }];
  if (!isPlainObject(matrix)) throw new InputError("matrix: expected an object of lists");
  let combos: Record<string, unknown>[] = [{}];
  for (const [key, list] of Object.entries(matrix)) {
    if (!Array.isArray(list) || list.length === 0) {
      throw new InputError(`matrix.${key}: expected a non-empty list of values`);
    }
    combos = combos.flatMap((c) => list.map((v) => ({ ...c, [key]: v })));
  }
  return combos.map((values) => {
    const d = structuredClone(rest);
    for (const [k, v] of Object.entries(values)) applyMatrixValue(d, k, v);
    const label = Object.entries(values).map(([k, v]) =>
      `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`
    )
      .join(",");
    return { doc: d, label, values };
  });
}
