/**
 * `deno task convert IN OUT.safetensors [--arch NAME] [--classes N]`: a PyTorch
 * checkpoint (`.pth`, `.pth.tar`: zip or legacy format, read as data, never run)
 * or one of ours, written as our safetensors checkpoint.
 *
 * The architecture is `--arch`, else the one the file names (Cohen et al.'s
 * `arch`), else the only registered model whose state dict has exactly the
 * file's names and shapes. The weights are loaded into that model, so every
 * name and shape is checked, then saved with the model's name and the file's
 * epoch in the metadata: `deno task macer --task test --resume_ckpt OUT`
 * builds the right model from it.
 *
 * @module
 */
import { basename } from "node:path";
import { parseCommandLine } from "./flags.ts";
import { UsageError } from "./usage_error.ts";
import {
  CheckpointError,
  loadCheckpoint,
  readCheckpointFile,
  saveCheckpoint,
} from "../io/checkpoint.ts";
import { buildModel, MODEL_NAMES, MODELS } from "../train/models.ts";

const USAGE = `Usage: deno task convert IN OUT.safetensors [--arch NAME] [--classes N]\n` +
  `IN: a PyTorch checkpoint (.pth, .pth.tar) or a safetensors file, told by its content\n` +
  `--arch: ${MODEL_NAMES.join(", ")} (default: the file's arch, else the model that fits)\n` +
  `--classes: outputs of the model (default 10)`;

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Runs the `convert` command.
 *
 * @param args the command's arguments (without "convert")
 * @returns the exit code
 * @throws UsageError on bad flags (exit code 2); CheckpointError for an unusable file (exit code 1)
 */
export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(args, {
    arch: { type: "string" },
    classes: { type: "string", default: "10" },
    help: { type: "boolean", short: "h", default: false },
  }, USAGE);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 2) {
    throw new UsageError(`expected IN and OUT, got ${positionals.length} argument(s)\n${USAGE}`, 2);
  }
  const [input, output] = positionals;
  const classes = Number(values.classes);
  if (!Number.isSafeInteger(classes) || classes < 1) {
    throw new UsageError(`--classes must be a whole number >= 1, got "${values.classes}"`, 2);
  }
  if (values.arch !== undefined && !Object.hasOwn(MODELS, values.arch)) {
    throw new UsageError(`unknown --arch "${values.arch}"\n${USAGE}`, 2);
  }
  const file = await readCheckpointFile(input);
  let arch = values.arch;
  if (arch === undefined && file.arch !== undefined) {
    if (!Object.hasOwn(MODELS, file.arch)) {
      throw new CheckpointError(
        `Cannot convert ${input}: it names architecture "${file.arch}", which is not one of ` +
          `${MODEL_NAMES.join(", ")}; give --arch`,
      );
    }
    arch = file.arch;
  }
  if (arch === undefined) {
    const fits = MODEL_NAMES.filter((name) => {
      const stem = file.tensors[MODELS[name].stem.name];
      if (stem === undefined || !sameShape(stem.shape, MODELS[name].stem.shape)) return false;
      const entries = buildModel(name, 0, classes).stateEntries();
      const names = Object.keys(file.tensors);
      return names.length === entries.length &&
        entries.every((e) =>
          file.tensors[e.name] && sameShape(file.tensors[e.name].shape, e.shape)
        );
    });
    if (fits.length !== 1) {
      throw new CheckpointError(
        `Cannot convert ${input}: ${
          fits.length === 0 ? "no registered model fits" : `${fits.join(" and ")} all fit`
        } its ${Object.keys(file.tensors).length} tensors with ${classes} classes; ` +
          `give --arch (${MODEL_NAMES.join(", ")}) and --classes`,
      );
    }
    arch = fits[0];
  }
  const model = buildModel(arch, 0, classes);
  const loaded = await loadCheckpoint(input, model);
  await saveCheckpoint(output, model, {
    ...loaded.state,
    config: { ...loaded.state.config, model: arch, converted_from: basename(input) },
  });
  console.log(
    `${input} (${loaded.format}, epoch ${loaded.state.epoch}) -> ${output}: ` +
      `${model.stateEntries().length} tensors of ${arch}`,
  );
  return 0;
}
