/**
 * A streaming tar reader for image layers: ustar, GNU long names and long
 * link names (`L`/`K`), pax extended headers (`x`: path, linkpath, size) and
 * global pax headers (skipped). Written here rather than taken from npm
 * because a layer is attacker data and the worker needs exactly this much:
 * entries one at a time, a body that is either copied (bounded) or skipped,
 * nothing ever written by the reader itself.
 *
 * Invariants:
 * - Every header's checksum is verified; a bad one ends the archive with a
 *   TarError (a truncated or corrupt layer is never half-believed).
 * - Names are returned as stored, without a leading "./" or "/"; they are
 *   data, never a path on this machine (layers.ts confines every write).
 * - The caller must consume or skip an entry's body before asking for the
 *   next one; an unconsumed body is skipped.
 */

/** A layer is not a tar archive we can read (bad checksum, truncated). */
export class TarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TarError";
  }
}

export type TarEntryType = "file" | "hardlink" | "symlink" | "directory" | "other";

/** One entry of an archive. */
export interface TarEntry {
  /** The name as stored, normalized: no leading "./" or "/", no trailing "/". */
  name: string;
  type: TarEntryType;
  size: number;
  /** Target of a symlink (as stored) or a hard link (an archive name). */
  linkname: string;
  mode: number;
}

/** Where an entry's body goes: each chunk in order, then end(). */
export interface TarSink {
  write(chunk: Buffer): Promise<void> | void;
  end(): Promise<void> | void;
}

/** Pulls exact byte counts out of an async stream of chunks. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  constructor(private readonly it: AsyncIterator<Buffer | Uint8Array | string>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.buf.length < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else this.buf = this.buf.length === 0 ? Buffer.from(r.value as Uint8Array) : Buffer.concat([this.buf, Buffer.from(r.value as Uint8Array)]);
    }
    return this.buf.length >= n;
  }

  /** Exactly `n` bytes, or null at a clean end of stream (nothing left). */
  async read(n: number): Promise<Buffer | null> {
    if (!(await this.fill(n))) {
      if (this.buf.length === 0) return null;
      throw new TarError(`truncated archive: wanted ${n} bytes, ${this.buf.length} left`);
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Hands `n` bytes to `sink` chunk by chunk (never holding them all). */
  async pipe(n: number, sink: ((chunk: Buffer) => Promise<void> | void) | null): Promise<void> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill(1))) throw new TarError(`truncated archive: ${left} bytes of an entry missing`);
      const take = Math.min(left, this.buf.length);
      const chunk = this.buf.subarray(0, take);
      this.buf = this.buf.subarray(take);
      left -= take;
      if (sink) await sink(chunk);
    }
  }
}

function cstring(b: Buffer, start: number, len: number): string {
  const s = b.subarray(start, start + len);
  const nul = s.indexOf(0);
  return s.toString("utf8", 0, nul === -1 ? s.length : nul);
}

/** Octal, or GNU base-256 (high bit of the first byte set) for sizes over 8 GiB. */
function numeric(b: Buffer, start: number, len: number): number {
  const f = b.subarray(start, start + len);
  if (f[0]! & 0x80) {
    let n = f[0]! & 0x7f;
    for (let i = 1; i < f.length; i++) n = n * 256 + f[i]!;
    return n;
  }
  const s = cstring(b, start, len).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarError(`bad numeric header field ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  try {
    return numeric(h, 148, 8) === sum;
  } catch {
    return false; // not even a number where the checksum belongs: not a tar header
  }
}

/** Pax records: "<len> <key>=<value>\n". */
export function parsePax(b: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let off = 0;
  while (off < b.length) {
    const sp = b.indexOf(0x20, off);
    if (sp === -1) break;
    const len = Number(b.toString("ascii", off, sp));
    if (!Number.isSafeInteger(len) || len <= 0 || off + len > b.length) throw new TarError("bad pax record");
    const rec = b.toString("utf8", sp + 1, off + len - 1);
    const eq = rec.indexOf("=");
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1));
    off += len;
  }
  return out;
}

/** "./usr/lib/" → "usr/lib". Data only: ".." stays for the confining reader to reject. */
export function normalizeName(name: string): string {
  let n = name.replace(/\/+/g, "/");
  while (n.startsWith("./")) n = n.slice(2);
  n = n.replace(/^\/+/, "").replace(/\/+$/, "");
  return n === "." ? "" : n;
}

const TYPES: Record<string, TarEntryType> = { "0": "file", "\0": "file", "7": "file", "1": "hardlink", "2": "symlink", "5": "directory" };

/** Metadata entries (long names, pax) bigger than this are not believed. */
const MAX_META_BYTES = 1024 * 1024;

/**
 * Reads a tar stream entry by entry. For each entry, `onEntry` may return a
 * sink for its body or null to skip it. `stop()`, asked before each header,
 * ends the reading early (everything wanted was found).
 */
export async function readTar(
  stream: AsyncIterable<Buffer | Uint8Array | string>,
  onEntry: (entry: TarEntry) => Promise<TarSink | null> | TarSink | null,
  stop: () => boolean = () => false,
): Promise<void> {
  const r = new ByteReader(stream[Symbol.asyncIterator]());
  let longName: string | null = null;
  let longLink: string | null = null;
  let pax = new Map<string, string>();
  for (;;) {
    if (stop()) return;
    const h = await r.read(512);
    if (h === null || h.every((x) => x === 0)) return; // end-of-archive blocks (or a stream that ends at a boundary)
    if (!checksumOk(h)) throw new TarError("bad header checksum (not a tar archive, or corrupt)");
    const flag = String.fromCharCode(h[156]!);
    let size = numeric(h, 124, 12);
    const padded = Math.ceil(size / 512) * 512;
    if (flag === "L" || flag === "K" || flag === "x" || flag === "g") {
      if (size > MAX_META_BYTES) throw new TarError(`metadata entry of ${size} bytes`);
      const body = size > 0 ? await r.read(padded) : Buffer.alloc(0);
      if (body === null) throw new TarError("truncated archive in a metadata entry");
      const data = body.subarray(0, size);
      if (flag === "L") longName = cstring(data, 0, data.length);
      else if (flag === "K") longLink = cstring(data, 0, data.length);
      else if (flag === "x") pax = parsePax(data);
      continue;
    }
    const ustar = h.toString("latin1", 257, 263) === "ustar\0";
    let name = cstring(h, 0, 100);
    const prefix = ustar ? cstring(h, 345, 155) : "";
    if (prefix) name = `${prefix}/${name}`;
    name = pax.get("path") ?? longName ?? name;
    const linkname = pax.get("linkpath") ?? longLink ?? cstring(h, 157, 100);
    const paxSize = pax.get("size");
    if (paxSize !== undefined && /^\d+$/.test(paxSize)) size = Number(paxSize);
    longName = longLink = null;
    pax = new Map();
    let type = TYPES[flag] ?? "other";
    if (type === "file" && flag === "\0" && name.endsWith("/")) type = "directory"; // old tar: a directory by its slash
    const bodySize = type === "file" ? size : type === "other" ? size : 0;
    const entry: TarEntry = { name: normalizeName(name), type, size: type === "file" ? size : 0, linkname, mode: numeric(h, 100, 8) };
    const sink = await onEntry(entry);
    await r.pipe(bodySize, sink ? (c) => sink.write(c) : null);
    if (sink) await sink.end();
    await r.pipe(Math.ceil(bodySize / 512) * 512 - bodySize, null);
  }
}
