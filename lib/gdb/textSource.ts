/**
 * Backtrace text read a line at a time, from a file or a buffer, without
 * ever holding it as one string: `parse` of a 19 MB paste keeps only what it
 * parsed, not the text (a string of it and the buffer it was decoded from
 * were ~40 MB of the process before anything was parsed).
 *
 * Lines are split on "\n" bytes exactly as parseBacktrace splits a string:
 * the text after the last "\n" is a line too ("" when the text ends in
 * "\n"). Each line is decoded from UTF-8 on its own; a "\n" byte is never
 * part of a multi-byte sequence, so the decoded lines are the lines of the
 * whole text decoded at once (a malformed sequence becomes U+FFFD in both).
 * Offsets are byte offsets in the text: `text(start, end)` reads a range
 * back, for the one part that is parsed again whole (the crash thread).
 */
import { open, type FileHandle } from "node:fs/promises";

/** Bytes read per `read()` from a file. */
export const CHUNK_BYTES = 1024 * 1024;

export interface TextSource {
  /** Calls `onLine` with every line and the byte offset it starts at, in order; resolves to the text's size in bytes. */
  lines(onLine: (line: string, offset: number) => void): Promise<number>;
  /** Bytes [start, end) of the text, decoded. */
  text(start: number, end: number): Promise<string>;
  /** The whole text, decoded (what a lean parse avoids: `parse --json --full` needs every frame anyway). */
  all(): Promise<string>;
  close(): Promise<void>;
}

/**
 * Splits a text handed over in pieces into lines. A line that spans pieces
 * is gathered (its parts copied: the caller may reuse a piece's buffer) and
 * decoded once it is whole, so a long line costs its length, not its length
 * times the number of pieces.
 */
class LineSplitter {
  private carry: Buffer[] = [];
  private carryStart = 0;
  private offset = 0;
  constructor(private readonly onLine: (line: string, offset: number) => void) {}

  /** The next `n` bytes of the text, `piece[0..n)`. */
  push(piece: Buffer, n: number): void {
    let i = 0;
    for (;;) {
      const nl = piece.indexOf(10, i);
      if (nl === -1 || nl >= n) break;
      if (this.carry.length > 0) {
        this.carry.push(piece.subarray(i, nl));
        const line = Buffer.concat(this.carry).toString("utf8");
        this.carry = [];
        this.onLine(line, this.carryStart);
      } else {
        this.onLine(piece.toString("utf8", i, nl), this.offset + i);
      }
      i = nl + 1;
    }
    if (i < n) {
      if (this.carry.length === 0) this.carryStart = this.offset + i;
      this.carry.push(Buffer.from(piece.subarray(i, n)));
    }
    this.offset += n;
  }

  /** The end of the text: its last line. Returns the size in bytes. */
  end(): number {
    if (this.carry.length > 0) this.onLine(Buffer.concat(this.carry).toString("utf8"), this.carryStart);
    else this.onLine("", this.offset);
    this.carry = [];
    return this.offset;
  }
}

/** Text already in memory (stdin, read whole: it cannot be read twice). */
export function bufferSource(buf: Buffer): TextSource {
  return {
    lines: async (onLine) => {
      const split = new LineSplitter(onLine);
      split.push(buf, buf.length);
      return split.end();
    },
    text: async (start, end) => buf.toString("utf8", start, end),
    all: async () => buf.toString("utf8"),
    close: async () => undefined,
  };
}

/**
 * A file, read in CHUNK_BYTES pieces into one reused buffer (a pipe or a
 * device is read whole: it cannot be read again). Opened here, so a missing
 * file or a directory fails now (with its `code`: ENOENT, EISDIR, EACCES),
 * before anything is parsed.
 */
export async function fileSource(path: string, chunkBytes = CHUNK_BYTES): Promise<TextSource> {
  const fh: FileHandle = await open(path, "r");
  let whole: Buffer | null = null;
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw Object.assign(new Error(`EISDIR: illegal operation on a directory, read '${path}'`), { code: "EISDIR" });
    // A pipe (`parse <(gdb ...)`, a FIFO) or a device cannot be read twice: read it whole, as stdin is.
    if (!st.isFile()) whole = await fh.readFile();
  } catch (e: unknown) {
    await fh.close();
    throw e;
  }
  if (whole) {
    await fh.close();
    return bufferSource(whole);
  }
  return {
    lines: async (onLine) => {
      const split = new LineSplitter(onLine);
      const piece = Buffer.allocUnsafe(chunkBytes);
      let position = 0;
      for (;;) {
        const { bytesRead } = await fh.read(piece, 0, chunkBytes, position);
        if (bytesRead === 0) break;
        split.push(piece, bytesRead);
        position += bytesRead;
      }
      return split.end();
    },
    text: async (start, end) => {
      const buf = Buffer.allocUnsafe(Math.max(0, end - start));
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, start + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buf.toString("utf8", 0, got);
    },
    all: () => fh.readFile({ encoding: "utf8" }),
    close: () => fh.close(),
  };
}
