/**
 * The library's own error for problems in what the user gave it: a file, a
 * field of a pipeline, a value. Its message is complete on its own (it names
 * the file or field and what was expected), so a command-line front end prints
 * the message alone, without a stack trace, and exits non-zero. Anything else
 * thrown is a bug.
 *
 * @module
 */

/** A problem with the user's input, described by its message alone. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InputError";
  }
}
