/**
 * Progress on stderr: on a terminal one line redrawn in place (a bar with
 * rate and time left), elsewhere (CI, log files) plain lines now and then.
 *
 * @module
 */
const encoder = new TextEncoder();

/** Writes a progress line: redrawn in place on a terminal, a plain line elsewhere. */
export function progressLine(text: string, final = false): void {
  if (Deno.stderr.isTerminal()) {
    Deno.stderr.writeSync(encoder.encode(`\r\x1b[2K${text}${final ? "\n" : ""}`));
  } else {
    Deno.stderr.writeSync(encoder.encode(`${text}\n`));
  }
}

/** At most one `true` every `ms` milliseconds, and always for the last call. */
export function throttle(ms: number): (last: boolean) => boolean {
  let t = -Infinity;
  return (last) => {
    const now = performance.now();
    if (!last && now - t < ms) return false;
    t = now;
    return true;
  };
}

/** `[#####-----]  12/40  3.1/s  9 s left`. */
export function progressBar(
  done: number,
  total: number,
  seconds: number,
  unit: string,
  width = 24,
): string {
  const frac = total > 0 ? Math.min(1, done / total) : 0;
  const full = Math.round(frac * width);
  const rate = seconds > 0 ? done / seconds : 0;
  const left = rate > 0 ? (total - done) / rate : NaN;
  const rateText = rate >= 1
    ? `${rate.toFixed(1)} ${unit}/s`
    : `${(1 / rate).toFixed(1)} s/${unit}`;
  return `[${"#".repeat(full)}${"-".repeat(width - full)}] ${done}/${total}  ${
    rate > 0 ? rateText : "-"
  }  ${Number.isFinite(left) ? `${left.toFixed(0)} s left` : ""}`.trimEnd();
}
