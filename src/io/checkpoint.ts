/**
 * Training checkpoints as safetensors files; PyTorch checkpoints read too.
 *
 * Tensors carry PyTorch's `state_dict` names (`conv1.weight`,
 * `layer1.0.bn1.running_mean`, `...num_batches_tracked` as I64), plus the SGD
 * momentum buffers as `optimizer.momentum_buffer.<parameter name>`. The
 * `__metadata__` map holds the epoch, the learning-rate schedule position and
 * the random state (Philox noise seed and offset, data-order seed), so a run
 * resumes bit-identically. Files are written atomically.
 *
 * Loading also accepts what `torch.save` writes (`.pth`, `.pth.tar`: the zip and
 * the legacy format, read as data by `torch.ts`, never run), told apart from
 * safetensors by the file's first bytes, not its name. Their state dicts'
 * names are matched after dropping DataParallel's `module.` parts; a batch
 * norm without `num_batches_tracked` (as PyTorch before 0.4.1 saved it) gets 0,
 * as PyTorch itself does.
 *
 * Loading checks every name, dtype, shape and value against the model before
 * touching it, so a malformed, mismatched or hostile file is refused with a
 * {@linkcode CheckpointError} (every missing, unexpected or misshapen tensor
 * listed with the shape the model expects) and leaves the model unchanged.
 *
 * @module
 */
import { Tensor as DeviceTensor } from "../../compute/tensor.ts";
import type { Module, StateEntry } from "../nn/module.ts";
import type { SGD } from "../train/sgd.ts";
import { InputError } from "../errors.ts";
import {
  parseSafetensors,
  SafetensorsError,
  type SafetensorsFile,
  type Tensor,
  writeSafetensors,
} from "./safetensors.ts";
import { isTorchFile, readTorchCheckpoint, TorchError } from "./torch.ts";

/** Value of `__metadata__.format` in files this module writes. */
export const CHECKPOINT_FORMAT = "macer-checkpoint";
/** Version of the metadata layout. */
export const CHECKPOINT_VERSION = 1;
/** Name prefix of the momentum buffers. */
export const MOMENTUM_PREFIX = "optimizer.momentum_buffer.";

/** A checkpoint that cannot be used: malformed, hostile or for another model. */
export class CheckpointError extends InputError {
  constructor(message: string) {
    super(message);
    this.name = "CheckpointError";
  }
}

/** The training state stored beside the weights. */
export interface TrainingState {
  /** Epochs completed. */
  epoch: number;
  /** Philox key of the training noise. */
  noiseSeed: number;
  /** Next unused position in the training noise stream (a multiple of 4). */
  noiseOffset: number;
  /** Seed of the data order and augmentation. */
  dataSeed: number;
  /** Learning rate before any decay. */
  baseLr?: number;
  /** Epochs at which the learning rate is multiplied by `lrGamma`. */
  milestones?: number[];
  /** Learning-rate decay factor. */
  lrGamma?: number;
  /** Learning rate of the last completed epoch. */
  lr?: number;
  /** Free-form settings kept for the record (method, dataset, sigma, ...). */
  config?: Record<string, unknown>;
}

/** The kinds of checkpoint file, told apart by their first bytes. */
export type CheckpointFormat = "safetensors" | "torch-zip" | "torch-legacy";

/** What {@linkcode loadCheckpoint} found. */
export interface LoadedCheckpoint {
  /** The file's format. */
  format: CheckpointFormat;
  /** The architecture the file names (a PyTorch checkpoint's `arch`, or our metadata's model). */
  arch?: string;
  /** The state from the metadata; defaults (epoch 0, seeds 0) when the file has none. */
  state: TrainingState;
  /** Whether the file carried our metadata (false for a bare converted state dict). */
  hasMetadata: boolean;
  /** Whether momentum buffers were loaded into the optimizer. */
  loadedMomentum: boolean;
  /** The raw metadata map. */
  metadata: Record<string, string>;
}

function safeInt(v: number, name: string): string {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new RangeError(`${name} must be a whole number >= 0, got ${v}`);
  }
  return String(v);
}

/**
 * Writes the model, the optimizer's momentum buffers (when it has taken a
 * step) and the training state to `path`, atomically.
 *
 * @param path destination `.safetensors` file
 * @param model the model (its state dict is saved)
 * @param state epoch, schedule and random state
 * @param optimizer the SGD optimizer whose buffers to save, if any
 */
export async function saveCheckpoint(
  path: string,
  model: Module,
  state: TrainingState,
  optimizer?: SGD,
): Promise<void> {
  if (state.noiseOffset % 4 !== 0) {
    throw new RangeError(`noiseOffset must be a multiple of 4, got ${state.noiseOffset}`);
  }
  const tensors: Record<string, Tensor> = {};
  for (const e of model.stateEntries()) {
    tensors[e.name] = {
      dtype: e.dtype === "i64" ? "I64" : "F32",
      shape: [...e.shape],
      data: e.read(),
    };
  }
  if (optimizer?.buffers) {
    const named = namedParams(model);
    optimizer.buffers.forEach((b, i) => {
      tensors[MOMENTUM_PREFIX + named[i]] = { dtype: "F32", shape: [...b.shape], data: b.toF32() };
    });
  }
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    format_version: String(CHECKPOINT_VERSION),
    epoch: safeInt(state.epoch, "epoch"),
    noise_seed: safeInt(state.noiseSeed, "noiseSeed"),
    noise_offset: safeInt(state.noiseOffset, "noiseOffset"),
    data_seed: safeInt(state.dataSeed, "dataSeed"),
  };
  if (state.baseLr !== undefined) metadata.base_lr = String(state.baseLr);
  if (state.milestones !== undefined) metadata.milestones = JSON.stringify(state.milestones);
  if (state.lrGamma !== undefined) metadata.lr_gamma = String(state.lrGamma);
  if (state.lr !== undefined) metadata.lr = String(state.lr);
  if (state.config !== undefined) metadata.config = JSON.stringify(state.config);
  await writeSafetensors(path, tensors, metadata);
}

function namedParams(model: Module): string[] {
  return model.namedParameters().map(([n]) => n);
}

function expectedBytes(entries: StateEntry[]): number {
  return entries.reduce(
    (sum, e) => sum + e.shape.reduce((a, b) => a * b, 1) * (e.dtype === "i64" ? 8 : 4),
    0,
  );
}

function fail(source: string, msg: string): never {
  throw new CheckpointError(`Cannot load checkpoint ${source}: ${msg}`);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function metaInt(
  meta: Record<string, string>,
  key: string,
  fallback: number,
  source: string,
): number {
  const raw = meta[key];
  if (raw === undefined) return fallback;
  if (!/^\d{1,16}$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
    fail(
      source,
      `metadata "${key}" is not a whole number >= 0: ${JSON.stringify(raw.slice(0, 40))}`,
    );
  }
  return Number(raw);
}

function metaFloat(meta: Record<string, string>, key: string, source: string): number | undefined {
  const raw = meta[key];
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(v) || v < 0) {
    fail(
      source,
      `metadata "${key}" is not a finite number >= 0: ${JSON.stringify(raw.slice(0, 40))}`,
    );
  }
  return v;
}

/** Parses and checks the metadata; returns the state. */
function parseState(meta: Record<string, string>, source: string): TrainingState {
  if (meta.format !== undefined && meta.format !== CHECKPOINT_FORMAT) {
    fail(
      source,
      `metadata format is ${JSON.stringify(meta.format)}, expected "${CHECKPOINT_FORMAT}"`,
    );
  }
  if (meta.format_version !== undefined && meta.format_version !== String(CHECKPOINT_VERSION)) {
    fail(source, `unsupported format_version ${JSON.stringify(meta.format_version)}`);
  }
  const state: TrainingState = {
    epoch: metaInt(meta, "epoch", 0, source),
    noiseSeed: metaInt(meta, "noise_seed", 0, source),
    noiseOffset: metaInt(meta, "noise_offset", 0, source),
    dataSeed: metaInt(meta, "data_seed", 0, source),
    baseLr: metaFloat(meta, "base_lr", source),
    lrGamma: metaFloat(meta, "lr_gamma", source),
    lr: metaFloat(meta, "lr", source),
  };
  if (state.noiseOffset % 4 !== 0) {
    fail(source, `noise_offset ${state.noiseOffset} is not a multiple of 4`);
  }
  if (meta.milestones !== undefined) {
    let m: unknown;
    try {
      m = JSON.parse(meta.milestones);
    } catch {
      m = undefined;
    }
    if (
      !Array.isArray(m) || m.length > 1000 ||
      !m.every((v) => Number.isSafeInteger(v) && v >= 0)
    ) {
      fail(source, `metadata "milestones" is not a list of epochs`);
    }
    state.milestones = m as number[];
  }
  if (meta.config !== undefined) {
    let c: unknown;
    try {
      c = JSON.parse(meta.config);
    } catch {
      c = undefined;
    }
    if (typeof c !== "object" || c === null || Array.isArray(c)) {
      fail(source, `metadata "config" is not a JSON object`);
    }
    state.config = c as Record<string, unknown>;
  }
  return state;
}

/**
 * Checks a parsed file against the model (and optimizer) without changing
 * anything; returns the state.
 */
function validate(
  file: SafetensorsFile & { arch?: string },
  model: Module,
  source: string,
): { state: TrainingState; momentum: boolean } {
  const entries = model.stateEntries();
  const known = new Set(entries.map((e) => e.name));
  const params = model.namedParameters();
  const paramNames = new Set(params.map(([n]) => n));
  const names = Object.keys(file.tensors);

  const problems: string[] = [];
  for (const e of entries) {
    const t = file.tensors[e.name];
    if (t === undefined) problems.push(`missing ${e.name} [${e.shape}]`);
    else if (!sameShape(t.shape, e.shape)) {
      problems.push(`${e.name}: shape [${t.shape}] in the file, the model expects [${e.shape}]`);
    }
  }
  for (const n of names) {
    if (
      !known.has(n) &&
      !(n.startsWith(MOMENTUM_PREFIX) && paramNames.has(n.slice(MOMENTUM_PREFIX.length)))
    ) {
      problems.push(`unexpected ${JSON.stringify(n.slice(0, 80))} [${file.tensors[n].shape}]`);
    }
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, 30);
    if (problems.length > shown.length) shown.push(`... and ${problems.length - 30} more`);
    const hint = file.arch === undefined ? "" : ` (the file names its architecture "${file.arch}")`;
    fail(
      source,
      `its tensors do not fit the model${hint}; is it for another model?\n  ${shown.join("\n  ")}`,
    );
  }
  for (const e of entries) {
    const t = file.tensors[e.name];
    const dtype = e.dtype === "i64" ? "I64" : "F32";
    if (t.dtype !== dtype) fail(source, `"${e.name}" is ${t.dtype}, expected ${dtype}`);
    if (dtype === "F32") {
      const d = t.data as Float32Array;
      for (let i = 0; i < d.length; i++) {
        if (!Number.isFinite(d[i])) fail(source, `"${e.name}" holds a non-finite value (${d[i]})`);
      }
    } else {
      const d = t.data as BigInt64Array;
      for (const v of d) {
        if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
          fail(source, `"${e.name}" holds an out-of-range count (${v})`);
        }
      }
    }
  }
  const buffers = names.filter((n) => n.startsWith(MOMENTUM_PREFIX));
  if (buffers.length > 0 && buffers.length !== params.length) {
    fail(source, `it has momentum buffers for ${buffers.length} of ${params.length} parameters`);
  }
  for (const [name, p] of buffers.length > 0 ? params : []) {
    const t = file.tensors[MOMENTUM_PREFIX + name];
    if (t.dtype !== "F32" || !sameShape(t.shape, p.value.shape)) {
      fail(
        source,
        `momentum buffer of "${name}" is ${t.dtype} [${t.shape}], expected F32 [${p.value.shape}]`,
      );
    }
    const d = t.data as Float32Array;
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i])) fail(source, `momentum buffer of "${name}" holds ${d[i]}`);
    }
  }
  return { state: parseState(file.metadata, source), momentum: buffers.length > 0 };
}

/** The format of a checkpoint file from its first bytes; undefined for none we read. */
export function checkpointFormat(bytes: Uint8Array): CheckpointFormat | undefined {
  if (isTorchFile(bytes)) return bytes[0] === 0x50 ? "torch-zip" : "torch-legacy";
  // safetensors: an 8-byte header length, then the JSON header's "{".
  if (bytes.length >= 9 && bytes[8] === 0x7b) return "safetensors";
  return undefined;
}

/** A parsed checkpoint file, names as the model's, before it is checked against a model. */
interface ParsedFile extends SafetensorsFile {
  format: CheckpointFormat;
  arch?: string;
  epoch?: number;
}

/**
 * Parses a checkpoint file of any format we read. A PyTorch state dict's names
 * lose DataParallel's `module.` parts; its epoch becomes the metadata's.
 */
function parseFile(bytes: Uint8Array, label: string): ParsedFile {
  const format = checkpointFormat(bytes);
  if (format === undefined) {
    if (bytes.length < 9) {
      fail(label, `the file is ${bytes.length} bytes, shorter than any checkpoint`);
    }
    const head = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, "0"));
    fail(
      label,
      `neither a PyTorch checkpoint (.pth, .pth.tar: a zip archive or a pickle) nor a ` +
        `safetensors file (it starts with bytes ${head.join(" ")})`,
    );
  }
  try {
    if (format === "safetensors") {
      const f = parseSafetensors(bytes);
      const model = f.metadata.config === undefined ? undefined : modelOfConfig(f.metadata.config);
      return { ...f, format, arch: model };
    }
    const t = readTorchCheckpoint(bytes);
    const tensors: Record<string, Tensor> = {};
    for (const [name, tensor] of Object.entries(t.tensors)) {
      const plain = name.split(".").filter((part) => part !== "module").join(".");
      if (plain in tensors) fail(label, `two tensors are named "${plain}" without "module."`);
      tensors[plain] = tensor;
    }
    const metadata: Record<string, string> = {};
    if (t.epoch !== undefined && t.epoch >= 0) metadata.epoch = String(t.epoch);
    return { tensors, metadata, format, arch: t.arch, epoch: t.epoch };
  } catch (e) {
    if (e instanceof SafetensorsError || e instanceof TorchError) {
      const what = format === "safetensors" ? "safetensors file" : "PyTorch checkpoint";
      fail(label, `(read as a ${what}) ${e.message}`);
    }
    throw e;
  }
}

function modelOfConfig(config: string): string | undefined {
  try {
    const c = JSON.parse(config);
    return typeof c?.model === "string" ? c.model : undefined;
  } catch {
    return undefined;
  }
}

/** Adds a zero `num_batches_tracked` where a PyTorch file's batch norm has none. */
function fillBatchCounts(file: ParsedFile, entries: StateEntry[]): void {
  if (file.format === "safetensors") return;
  for (const e of entries) {
    if (
      e.name.endsWith(".num_batches_tracked") && !(e.name in file.tensors) &&
      e.name.replace(/num_batches_tracked$/, "running_mean") in file.tensors
    ) {
      file.tensors[e.name] = { dtype: "I64", shape: [], data: new BigInt64Array(1) };
    }
  }
}

async function readSource(source: string | Uint8Array, label: string, limit: number) {
  if (typeof source !== "string") {
    if (source.length > limit) {
      fail(label, `${source.length} bytes, larger than any checkpoint of this model`);
    }
    return source;
  }
  let size: number;
  try {
    const st = await Deno.stat(source);
    if (!st.isFile) fail(label, "not a regular file");
    size = st.size;
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    fail(label, (e as Error).message);
  }
  if (size > limit) fail(label, `file is ${size} bytes, larger than any checkpoint of this model`);
  try {
    return await Deno.readFile(source);
  } catch (e) {
    fail(label, (e as Error).message);
  }
}

/** A checkpoint file's contents, before any model is involved. */
export interface CheckpointContents {
  format: CheckpointFormat;
  /** The architecture the file names (a PyTorch checkpoint's `arch`, our metadata's model). */
  arch?: string;
  /** The tensors by name (PyTorch files: DataParallel's `module.` dropped; float32 or int64). */
  tensors: Record<string, Tensor>;
  /** The metadata map (a PyTorch file's epoch as `epoch`). */
  metadata: Record<string, string>;
}

/**
 * Reads a checkpoint file of any format {@linkcode loadCheckpoint} reads, without a model.
 *
 * @param path the file
 * @returns its format, architecture name, tensors and metadata
 * @throws {CheckpointError} for a missing, unreadable, malformed or hostile file
 */
export async function readCheckpointFile(path: string): Promise<CheckpointContents> {
  const f = parseFile(await readSource(path, path, 4 * 2 ** 30), path);
  return { format: f.format, arch: f.arch, tensors: f.tensors, metadata: f.metadata };
}

/**
 * The architecture a checkpoint file names, if any: a PyTorch checkpoint's
 * `arch` (Cohen et al.'s containers), or the model recorded in our metadata.
 *
 * @param path the file
 * @throws {CheckpointError} for a missing, unreadable, malformed or hostile file
 */
export async function checkpointArch(path: string): Promise<string | undefined> {
  return (await readCheckpointFile(path)).arch;
}

/**
 * Loads a checkpoint into `model` (and the momentum buffers into `optimizer`
 * when both are given). Nothing changes unless the whole file is valid.
 *
 * @param source path of a safetensors file or a PyTorch checkpoint (`.pth`, `.pth.tar`), or its
 *   bytes; the format is told by the content
 * @param model the model to fill; names, dtypes and shapes must match exactly
 * @param optimizer SGD whose momentum buffers to restore (optional)
 * @returns the training state and what was loaded
 * @throws {CheckpointError} for a missing, malformed, hostile or mismatched file
 */
export async function loadCheckpoint(
  source: string | Uint8Array,
  model: Module,
  optimizer?: SGD,
): Promise<LoadedCheckpoint> {
  const label = typeof source === "string" ? source : "(bytes)";
  const entries = model.stateEntries();
  // Weights, momentum or Adam buffers and a generous header: anything far larger is not ours.
  const limit = 4 * expectedBytes(entries) + (1 << 24);
  const file = parseFile(await readSource(source, label, limit), label);
  fillBatchCounts(file, entries);
  const { state, momentum } = validate(file, model, label);

  for (const e of entries) e.write(file.tensors[e.name].data as Float32Array | BigInt64Array);
  let loadedMomentum = false;
  if (optimizer && momentum) {
    optimizer.buffers?.forEach((b) => b.dispose());
    optimizer.buffers = model.namedParameters().map(([name, p]) => {
      const t = file.tensors[MOMENTUM_PREFIX + name];
      return DeviceTensor.fromF32(t.data as Float32Array, p.value.shape).keep();
    });
    loadedMomentum = true;
  }
  return {
    format: file.format,
    arch: file.arch,
    state,
    hasMetadata: file.metadata.format === CHECKPOINT_FORMAT,
    loadedMomentum,
    metadata: file.metadata,
  };
}
