/**
 * Errors raised while reading dataset files.
 *
 * @module
 */
import { InputError } from "../errors.ts";

/**
 * A dataset file is missing, malformed, truncated or inconsistent. The message
 * names the file and what is wrong; the CLI prints it without a stack trace.
 */
export class DatasetError extends InputError {
  /** The file (or folder) the problem was found in, when there is one. */
  path?: string;
  constructor(message: string, path?: string) {
    super(path === undefined ? message : `${path}: ${message}`);
    this.name = "DatasetError";
    this.path = path;
  }
}
