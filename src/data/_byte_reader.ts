/**
 * A pull-based reader over a byte stream: exact reads, reads straight into a
 * caller's buffer, and skips, without ever holding more than one chunk.
 *
 * @module
 */

/** Thrown when the stream ends before the bytes asked for. */
export class EndOfStreamError extends Error {
  constructor(wanted: number, got: number) {
    super(`unexpected end of data (wanted ${wanted} more bytes, got ${got})`);
    this.name = "EndOfStreamError";
  }
}

/** Sequential reader over a `ReadableStream<Uint8Array>`. */
export class ByteReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #chunk: Uint8Array = new Uint8Array(0);
  #at = 0;
  #done = false;
  /** Bytes consumed so far. */
  position = 0;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** Makes the current chunk non-empty; returns false at the end of the stream. */
  async #fill(): Promise<boolean> {
    while (this.#at >= this.#chunk.length) {
      if (this.#done) return false;
      const r = await this.#reader.read();
      if (r.done) {
        this.#done = true;
        return false;
      }
      this.#chunk = r.value;
      this.#at = 0;
    }
    return true;
  }

  /** True when no byte is left. */
  async atEnd(): Promise<boolean> {
    return !(await this.#fill());
  }

  /** Copies exactly `dst.length` bytes into `dst`. */
  async readInto(dst: Uint8Array): Promise<void> {
    let off = 0;
    while (off < dst.length) {
      if (!(await this.#fill())) throw new EndOfStreamError(dst.length - off, 0);
      const n = Math.min(dst.length - off, this.#chunk.length - this.#at);
      dst.set(this.#chunk.subarray(this.#at, this.#at + n), off);
      this.#at += n;
      off += n;
      this.position += n;
    }
  }

  /** Reads exactly `n` bytes into a new array. */
  async read(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    await this.readInto(out);
    return out;
  }

  /** Reads up to `max` bytes (at least one), or returns null at the end. */
  async readSome(max: number): Promise<Uint8Array<ArrayBuffer> | null> {
    if (!(await this.#fill())) return null;
    const n = Math.min(max, this.#chunk.length - this.#at);
    const out = this.#chunk.slice(this.#at, this.#at + n);
    this.#at += n;
    this.position += n;
    return out;
  }

  /** Skips exactly `n` bytes. */
  async skip(n: number): Promise<void> {
    let left = n;
    while (left > 0) {
      if (!(await this.#fill())) throw new EndOfStreamError(left, 0);
      const k = Math.min(left, this.#chunk.length - this.#at);
      this.#at += k;
      left -= k;
      this.position += k;
    }
  }

  /**
   * A stream of the next `n` bytes of this reader, for a nested decoder.
   * `finish()` waits for any read in flight, then skips what the decoder left
   * unread, so this reader stands right after the `n` bytes.
   */
  take(n: number): { stream: ReadableStream<Uint8Array<ArrayBuffer>>; finish(): Promise<void> } {
    let left = n;
    let pending: Promise<void> = Promise.resolve();
    let stopped = false;
    const stream = new ReadableStream<Uint8Array<ArrayBuffer>>({
      pull: (ctl) => {
        pending = (async () => {
          if (left === 0 || stopped) return ctl.close();
          const part = await this.readSome(Math.min(left, 1 << 20));
          if (part === null) return ctl.error(new EndOfStreamError(left, 0));
          left -= part.length;
          ctl.enqueue(part);
          if (left === 0) ctl.close();
        })();
        return pending;
      },
      cancel: () => {
        stopped = true;
      },
    }, { highWaterMark: 0 });
    const finish = async () => {
      stopped = true;
      await pending.catch(() => {});
      const rest = left;
      left = 0;
      await this.skip(rest);
    };
    return { stream, finish };
  }

  /** Releases the underlying stream. */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

/** Opens a file as a `ByteReader`; call `cancel()` when stopping early. */
export async function openFileReader(path: string): Promise<ByteReader> {
  const file = await Deno.open(path, { read: true });
  return new ByteReader(file.readable);
}
