/**
 * An error caused by the user's input (a flag, a file, a value): the CLI prints
 * its message alone, without a stack trace, and exits with `exitCode`.
 */
export class UsageError extends Error {
  /** Process exit code to use; 2 for bad flags, 1 for bad data. */
  exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = "UsageError";
    this.exitCode = exitCode;
  }
}
