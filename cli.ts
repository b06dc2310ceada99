/**
 * Command-line entry point: `deno run -A cli.ts <command> [flags]`.
 *
 * Each command lives in `src/cli/<command>.ts` and exports
 * `main(args: string[]): Promise<number>` returning the exit code.
 * Errors meant for the user are the library's `InputError`s (and the CLI's
 * `UsageError`s) and a compute library that cannot be set up as asked
 * (`ComputeSetupError`): printed without a stack trace, exit code 1 (2 for
 * bad flags).
 *
 * @module
 */
import { InputError } from "./src/errors.ts";
import { exitCodeOf } from "./src/cli/usage_error.ts";
import { ComputeSetupError } from "./compute/setup_error.ts";

const COMMANDS: Record<string, () => Promise<{ main(args: string[]): Promise<number> }>> = {
  convert: () => import("./src/cli/convert.ts"),
  data: () => import("./src/cli/data.ts"),
  macer: () => import("./src/cli/macer.ts"),
  merge: () => import("./src/cli/merge.ts"),
  devices: () => import("./src/cli/devices.ts"),
  pipeline: () => import("./src/cli/pipeline.ts"),
  report: () => import("./src/cli/report.ts"),
  submit: () => import("./src/cli/submit.ts"),
};

async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const load = name === undefined ? undefined : COMMANDS[name];
  if (load === undefined) {
    console.error(
      `Usage: cli.ts <command> [flags]\nCommands: ${Object.keys(COMMANDS).join(", ")}`,
    );
    return 2;
  }
  try {
    return await (await load()).main(rest);
  } catch (err) {
    if (err instanceof InputError) {
      console.error(`error: ${err.message}`);
      return exitCodeOf(err);
    }
    if (err instanceof ComputeSetupError) {
      console.error(`error: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

if (import.meta.main) {
  Deno.exit(await run(Deno.args));
}
