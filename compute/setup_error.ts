/**
 * The compute library could not be set up as asked: it is missing (not built,
 * or `MACER_COMPUTE_LIB` names no library), or `MACER_SIMD` names a level that
 * does not exist or that this CPU lacks. Its message says which and what to
 * do, so a command-line front end prints it alone. This module loads nothing,
 * so front ends can import it before the library.
 *
 * @module
 */

/** The compute library cannot be used as the environment asks. */
export class ComputeSetupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ComputeSetupError";
  }
}
