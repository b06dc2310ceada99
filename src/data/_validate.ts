/**
 * Checks shared by every format reader.
 *
 * @module
 */
import { DatasetError } from "./errors.ts";

/**
 * Throws when a label is not below `classes`.
 *
 * @param labels the labels to check
 * @param classes the number of classes
 * @param path the file they came from, for the message
 */
export function checkLabels(labels: Uint8Array, classes: number, path: string): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= classes) {
      throw new DatasetError(
        `label ${labels[i]} of image ${i} is out of range (expected 0..${classes - 1})`,
        path,
      );
    }
  }
}
