/**
 * A download progress bar on stderr.
 *
 * @module
 */
import type { DownloadProgress, ProgressCallback } from "./types.ts";

const encoder = new TextEncoder();

function mb(n: number): string {
  return (n / 1e6).toFixed(1);
}

/**
 * A progress callback that draws one self-updating bar per file on stderr
 * when it is a terminal, and prints one line per finished file otherwise.
 */
export function stderrProgress(): ProgressCallback {
  const tty = Deno.stderr.isTerminal();
  let last = 0;
  return (p: DownloadProgress) => {
    const write = (s: string) => Deno.stderr.writeSync(encoder.encode(s));
    if (!tty) {
      if (p.done) write(`downloaded ${p.file} (${mb(p.received)} MB)\n`);
      return;
    }
    const now = performance.now();
    if (!p.done && now - last < 100) return;
    last = now;
    const width = 30;
    let bar: string;
    if (p.total) {
      const frac = Math.min(1, p.received / p.total);
      const fill = Math.round(frac * width);
      bar = `[${"#".repeat(fill)}${"-".repeat(width - fill)}] ${(frac * 100).toFixed(0)}% ` +
        `${mb(p.received)}/${mb(p.total)} MB`;
    } else {
      bar = `${mb(p.received)} MB`;
    }
    write(`\r\x1b[2K${p.file} ${bar}${p.done ? "\n" : ""}`);
  };
}
