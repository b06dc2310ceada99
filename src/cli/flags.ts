/**
 * The flag parsing every command shares: `node:util`'s `parseArgs` (in place
 * of JSR's `@std/cli`), with a parse failure turned into a usage error.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./usage_error.ts";

/**
 * Parses a command's arguments strictly, positionals allowed.
 *
 * @param args the arguments after the command's name
 * @param options the flags
 * @param usage printed after a parse error (the usage text, or a pointer to --help)
 * @throws {UsageError} (exit code 2) on an unknown flag or a missing value
 */
export function parseCommandLine<O extends NonNullable<ParseArgsConfig["options"]>>(
  args: string[],
  options: O,
  usage: string,
) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${usage}`, 2);
  }
}
