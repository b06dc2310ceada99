/**
 * A bad flag or flag combination: the CLI prints its message alone, without a
 * stack trace, and exits with `exitCode` (2 for bad flags).
 *
 * @module
 */
import { InputError } from "../errors.ts";

/** An error in the command line itself, with the exit code to use. */
export class UsageError extends InputError {
  /** Process exit code to use; 2 for bad flags, 1 for unusable files. */
  exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = "UsageError";
    this.exitCode = exitCode;
  }
}

/** The exit code for an error of the library's input: its own, else 1. */
export function exitCodeOf(err: InputError): number {
  return err instanceof UsageError ? err.exitCode : 1;
}
