/**
 * Metered decompression: the one way a dump's compression layer is removed
 * (download, `analyze`, symbol resolution), so no path expands a bomb
 * without a limit.
 *
 *   compressed bytes → decompressor (compression.ts) → Meter(MAX_DUMP_BYTES) → file
 *
 * The Meter fails the stream as soon as more than `maxBytes` came out, so at
 * most `maxBytes` reach the disk. One layer is removed, never more: a dump
 * that is still compressed after its layer (gzip around zstd) is refused
 * (`unsupported_compression`): expanding it again would need another limit
 * and another pass over the disk, and no collector produces it.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import { Transform, type Duplex, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { PermanentError } from "../errors.js";
import { decompressor, detectCompression, type Compression } from "./compression.js";

const HWM = 1 << 20;

/** Counts (and optionally hashes) bytes as they pass; fails the stream with `too_large` past `maxBytes`. */
export class Meter extends Transform {
  bytes = 0;
  private readonly hash: Hash | null;
  constructor(
    private readonly maxBytes: number,
    private readonly what: string,
    withHash = false,
    private readonly onChunk: ((bytes: number) => void) | null = null,
  ) {
    super({ highWaterMark: HWM });
    this.hash = withHash ? createHash("md5") : null;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      cb(new PermanentError("too_large", `dump is too large: more than ${this.maxBytes} bytes ${this.what}, the MAX_DUMP_BYTES limit`));
      return;
    }
    this.hash?.update(chunk);
    this.onChunk?.(this.bytes);
    cb(null, chunk);
  }
  digest(): string {
    return this.hash ? this.hash.digest("hex") : "";
  }
}

/** The decompressor of `kind` followed by its meter: splice both into a pipeline. */
export function meteredDecompressor(kind: Compression, opts: { maxBytes: number }): { stages: [Duplex, Meter]; meter: Meter } {
  const meter = new Meter(opts.maxBytes, "decompressed");
  return { stages: [decompressor(kind), meter], meter };
}

/** Refuses a file that is still compressed (a second layer): `unsupported_compression`. */
export async function refuseNestedCompression(file: string, what: string, outer: Compression): Promise<void> {
  const fh = await fs.open(file, "r");
  let head: Buffer;
  try {
    const buf = Buffer.alloc(8);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    head = buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
  const inner = detectCompression(head);
  if (inner) {
    throw new PermanentError("unsupported_compression", `${what} is ${inner} inside ${outer}: one compression layer is removed, not more`);
  }
}

/**
 * Decompresses `src` (one `kind` layer) into `dest`, created exclusively,
 * writing at most `maxBytes`. Refuses a nested layer. On failure the partial
 * `dest` is left for the caller to judge (a cut stream still gives a cut
 * core) — except past the limit or for a nested layer, where it is removed.
 * Rejects with the stream's error (`too_large`, zlib/zstd errors, an abort).
 */
export async function decompressFile(src: string, dest: string, kind: Compression, opts: { maxBytes: number; signal?: AbortSignal }): Promise<{ bytes: number }> {
  const { stages, meter } = meteredDecompressor(kind, opts);
  try {
    await pipeline(
      [createReadStream(src, { highWaterMark: HWM }), ...stages, createWriteStream(dest, { flags: "wx", highWaterMark: HWM })],
      ...(opts.signal ? [{ signal: opts.signal }] : []),
    );
    await refuseNestedCompression(dest, src, kind);
  } catch (e: unknown) {
    if (e instanceof PermanentError && (e.code === "too_large" || e.code === "unsupported_compression")) await fs.rm(dest, { force: true });
    throw e;
  }
  return { bytes: meter.bytes };
}
