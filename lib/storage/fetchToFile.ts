/**
 * One way to put a body on disk, for every download the worker makes (dumps,
 * debuginfod, the S3 symbol store): at the disk's speed, in one pass, bounded.
 *
 * Why not fetch() + pipeline: a fetch body is a web stream, and bridging it
 * back (`Readable.fromWeb`) through metering transforms into a write stream
 * cost 2–4× curl's CPU on a loopback download (GC and undici's body handling
 * dominated the profile; issue 15). Here the body is a node Readable: for
 * http, plainGet's (the socket reads into 1 MiB buffers handed back once
 * written, see plainGet.ts); for https and the SDK, node's `IncomingMessage`.
 * One loop, on the chunks as pushed (not `for await`, which concatenates),
 * counts, caps, hashes and writes them. Each chunk is written at once, with a
 * synchronous write on this thread, while its bytes are still in this core's
 * cache, as curl does: the kernel's copy into the page cache is most of a
 * download's CPU, and from a buffer read a few MiB earlier on another thread
 * it took 1.5-2x as long (3 GiB, bench/download.ts). Once one such write is
 * slow (SLOW_WRITE_MS: the disk pushes back, dirty pages throttled), the rest
 * of the download goes the asynchronous way, so that a slow disk never stalls
 * the worker's event loop for longer than that one write: chunks handed,
 * uncopied, to `writev` in batches of BATCH bytes, one write at a time,
 * reading on while the disk works, memory under MAX_PENDING whatever the
 * size. The md5 stays on this thread: a worker-thread hash was measured and
 * cost more CPU than it saved on a busy 2-core machine (bench/download.ts
 * states md5's own rate beside curl's).
 *
 * The hostile-input rules are the callers' and stay theirs: each redirect hop
 * is checked against the host policy and connected to the checked address
 * (`openGet`, with hostPolicy.ts and pinnedFetch.ts); the size cap is
 * enforced on the bytes as they arrive, not on what the server announced;
 * the caller's AbortSignal (idle, deadline, minimum rate: download.ts's
 * watchdog) destroys the body and so ends the loop.
 */
import { createHash } from "node:crypto";
import { writeSync } from "node:fs";
import fsp, { type FileHandle } from "node:fs/promises";
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { PermanentError, toError } from "../errors.js";
import { checkHostAllowed } from "./hostPolicy.js";
import { pinnedRequest } from "./pinnedFetch.js";
import { plainGet, recycle, type PlainResponse, type Recyclable } from "./plainGet.js";

/**
 * Bytes per asynchronous write (after a slow one, see above): 512 KiB.
 * Measured on loopback, before the synchronous writes, against 256 KiB, 1, 2 and
 * 8 MiB: 8 MiB batches ran at half curl's speed, the socket idling while
 * each filled; 1 MiB writes matched 512 KiB ones up to 256 MiB, but on a 3 GiB
 * download (Linux 6.18, ext4) they took 1.5x as long, median of 6 rounds
 * interleaved with curl (4.28 s against 2.87 s; curl 2.29 s), nearly all of
 * it the kernel's copy into the page cache.
 */
const BATCH = 512 << 10;
/** Bytes read ahead of the disk before the socket is paused: the memory bound of a download. */
const MAX_PENDING = 16 << 20;
/**
 * A synchronous write that takes longer than this ends the synchronous writes
 * of its download (see above). Into the page cache a chunk (at most plainGet's
 * 1 MiB read) takes well under a millisecond; a throttled write can take 200.
 */
const SLOW_WRITE_MS = 20;
/**
 * The longest run of chunks handled before the body is paused for one turn of
 * the event loop. libuv reads a socket up to 32 times per wake-up, each read
 * handed on at once: with an md5 to check, one wake-up hashed ~30 MiB, and the
 * worker's other work waited 50 ms (median over a 3 GiB download) for it.
 */
const SLICE_MS = 10;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

export interface WriteToFileOptions {
  /** More bytes than this fail the write with `tooLarge(bytes)`'s error (the file is removed). */
  maxBytes: number;
  tooLarge: (bytes: number) => Error;
  /** Compute the md5 of the bytes (only when there is one to check: it is the largest CPU cost). */
  md5?: boolean;
  /** Called per chunk with the bytes so far (watchdogs, progress). */
  onBytes?: (bytes: number) => void;
  signal?: AbortSignal;
  /** A synchronous write slower than this switches the rest to asynchronous writes (default SLOW_WRITE_MS; tests). */
  slowWriteMs?: number;
}

/** Writes all of `b` at the file's current position, blocking; returns how long it took, in ms. */
function writeAllSync(fd: number, b: Buffer): number {
  const t0 = performance.now();
  for (let off = 0; off < b.length;) off += writeSync(fd, b, off);
  return performance.now() - t0;
}

/** Writes all of `bufs` at the file's current position (a short writev is finished with write). */
async function writeAll(fh: FileHandle, bufs: Buffer[], length: number): Promise<void> {
  const { bytesWritten } = await fh.writev(bufs);
  if (bytesWritten === length) return;
  let rest = Buffer.concat(bufs).subarray(bytesWritten);
  while (rest.length > 0) {
    const r = await fh.write(rest);
    rest = rest.subarray(r.bytesWritten);
  }
}

/**
 * Calls `onChunk` with each chunk of `src` as it was pushed (flowing mode),
 * pausing `src` while a promise `onChunk` returned is pending; resolves at the
 * end, rejects with the stream's error, `onChunk`'s, or a premature close.
 * Not `for await`: that reads with `read()`, which concatenates everything
 * buffered into a new Buffer (a copy of the body: 240 ms and most of the GC in
 * a 256 MiB download's profile, issue 15).
 */
function eachChunk(src: Readable, onChunk: (b: Buffer) => Promise<void> | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let done = false;
    const finish = (e?: unknown) => {
      if (done) return;
      done = true;
      // 'error' and 'close' stay listened to: the caller destroys `src` next, maybe with an error.
      src.off("data", onData);
      if (e === undefined) resolve();
      else reject(toError(e));
    };
    const onData = (c: Buffer | Uint8Array) => {
      if (done) return;
      let wait: Promise<void> | undefined;
      try {
        wait = onChunk(Buffer.isBuffer(c) ? c : Buffer.from(c));
      } catch (e: unknown) {
        return finish(e);
      }
      if (!wait) return;
      src.pause();
      wait.then(() => {
        if (!done) src.resume();
      }, finish);
    };
    const onClose = () => finish(src.readableEnded ? undefined : Object.assign(new Error("Premature close"), { code: "ERR_STREAM_PREMATURE_CLOSE" }));
    if (src.errored) return finish(src.errored);
    if (src.readableEnded) return finish();
    if (src.destroyed) return onClose();
    src.on("data", onData);
    src.on("end", () => finish());
    src.on("error", finish);
    src.on("close", onClose);
    src.resume();
  });
}

/**
 * Streams `src` into `file` (created or truncated): sizes capped and hashed in
 * the same pass, large writes. On any failure `src` is destroyed, the file
 * removed and the error rethrown as it was (callers classify).
 */
export async function writeToFile(src: Readable, file: string, opts: WriteToFileOptions): Promise<{ bytes: number; md5: string }> {
  const hash = opts.md5 ? createHash("md5") : null;
  const onAbort = () => src.destroy(opts.signal?.reason instanceof Error ? opts.signal.reason : new Error("aborted"));
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  let fh: FileHandle;
  try {
    fh = await fsp.open(file, "w");
  } catch (e: unknown) {
    // The same as any later failure: the body is destroyed and the signal let go of.
    opts.signal?.removeEventListener("abort", onAbort);
    src.destroy();
    throw e;
  }
  // plainGet's body reads into buffers it can reuse once written.
  const giveBack = (src as Recyclable)[recycle];
  const slowWriteMs = opts.slowWriteMs ?? SLOW_WRITE_MS;
  // Synchronous writes until one is slow; then, for good, the batched asynchronous ones below.
  let sync = true;
  let bytes = 0;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  // Writes run one after another (`tail`), while reading goes on: the socket
  // is paused only when more than MAX_PENDING bytes wait for the disk.
  let tail: Promise<void> = Promise.resolve();
  const pending: Array<{ done: Promise<void>; length: number }> = [];
  let pendingBytes = 0;
  const write: { failed: boolean; error?: unknown } = { failed: false };
  const flush = () => {
    if (batchBytes === 0) return;
    const bufs = batch;
    const length = batchBytes;
    batch = [];
    batchBytes = 0;
    tail = tail.then(async () => {
      await writeAll(fh, bufs, length);
      giveBack?.(bufs);
    });
    // Seen at once (no unhandled rejection while the loop waits on the socket), thrown by the loop's next chunk.
    void tail.catch((error: unknown) => {
      if (!write.failed) Object.assign(write, { failed: true, error });
    });
    pending.push({ done: tail, length });
    pendingBytes += length;
  };
  const drain = async () => {
    while (pendingBytes > MAX_PENDING) {
      const w = pending.shift()!;
      await w.done;
      pendingBytes -= w.length;
    }
  };
  try {
    // The start of this run of chunks on the event loop (see SLICE_MS).
    let slice = performance.now();
    // One turn of the event loop once this run has taken SLICE_MS, else nothing to wait for.
    const yieldIfLong = (): Promise<void> | undefined =>
      performance.now() - slice <= SLICE_MS
        ? undefined
        : new Promise<void>((resolve) =>
            setImmediate(() => {
              slice = performance.now();
              resolve();
            }),
          );
    await eachChunk(src, (b) => {
      if (write.failed) throw toError(write.error);
      bytes += b.length;
      if (bytes > opts.maxBytes) throw opts.tooLarge(bytes);
      hash?.update(b);
      opts.onBytes?.(bytes);
      if (sync) {
        if (writeAllSync(fh.fd, b) > slowWriteMs) sync = false;
        giveBack?.([b]);
        return yieldIfLong();
      }
      batch.push(b);
      batchBytes += b.length;
      if (batchBytes >= BATCH) flush();
      if (pendingBytes > MAX_PENDING) return drain();
      return yieldIfLong();
    });
    flush();
    await tail;
    await fh.close();
  } catch (e: unknown) {
    src.destroy();
    await tail.catch(() => undefined);
    await fh.close().catch(() => undefined);
    await fsp.rm(file, { force: true }).catch(() => undefined);
    throw e;
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
  }
  return { bytes, md5: hash ? hash.digest("hex") : "" };
}

/** A response opened by `openGet`: status, headers and the body as a node Readable. */
export interface OpenedGet {
  status: number;
  /** A header's value (the first, for a repeated one), or null. */
  header(name: string): string | null;
  body: Readable;
  /** The URL that answered (after redirects). */
  url: URL;
}

export interface OpenGetOptions {
  /**
   * The host policy (ALLOWED_DUMP_HOSTS): every hop is checked and connected
   * to an address the check saw. Absent: hosts the operator configured
   * (debuginfod servers), connected through the system resolver.
   */
  allowedHosts?: string[];
  /** An injected fetch (tests, a proxy) instead of node:http; its web body is bridged. */
  fetch?: typeof fetch;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** The URL as messages may show it (presigned URLs are redacted). */
  what?: string;
}

function fromNode(res: IncomingMessage | PlainResponse, url: URL): OpenedGet {
  const headers: IncomingHttpHeaders = res.headers;
  return {
    status: "status" in res ? res.status : (res.statusCode ?? 0),
    header: (name) => {
      const v = headers[name.toLowerCase()];
      return v === undefined ? null : Array.isArray(v) ? (v[0] ?? null) : v;
    },
    body: "body" in res ? res.body : res,
    url,
  };
}

function fromFetch(res: Response, url: URL): OpenedGet {
  return {
    status: res.status,
    header: (name) => res.headers.get(name),
    body: res.body ? Readable.fromWeb(res.body as WebReadableStream<Uint8Array>) : Readable.from([]),
    url,
  };
}

/**
 * GETs `url` following at most 5 redirects by hand (each hop re-checked
 * against `allowedHosts` when given), with `accept-encoding: identity` (a
 * decoded Content-Encoding would change the bytes an md5 is of). Resolves
 * with the first non-redirect answer, body unread. Throws
 * PermanentError("download_failed") for a redirect without Location or too
 * many, ("unsupported_url") for one to another scheme; network errors and
 * host-policy errors as they are.
 */
export async function openGet(url: URL, opts: OpenGetOptions = {}): Promise<OpenedGet> {
  const what = opts.what ?? url.href;
  const headers = { "accept-encoding": "identity", ...opts.headers };
  let current = url;
  for (let hop = 0; ; hop++) {
    const checked = opts.allowedHosts ? await checkHostAllowed(current, opts.allowedHosts) : [];
    const res = opts.fetch
      ? fromFetch(await opts.fetch(current, { redirect: "manual", headers, ...(opts.signal ? { signal: opts.signal } : {}) }), current)
      : fromNode(await (current.protocol === "http:" ? plainGet : pinnedRequest)(current, checked, { headers, ...(opts.signal ? { signal: opts.signal } : {}) }), current);
    if (!REDIRECTS.has(res.status)) return res;
    const location = res.header("location");
    res.body.destroy();
    if (!location) throw new PermanentError("download_failed", `GET ${what} answered HTTP ${res.status} without a Location`);
    if (hop >= MAX_REDIRECTS) throw new PermanentError("download_failed", `GET ${what}: more than ${MAX_REDIRECTS} redirects`);
    const next = new URL(location, current);
    if (next.protocol !== "http:" && next.protocol !== "https:") {
      throw new PermanentError("unsupported_url", `GET ${what} redirected to a ${next.protocol} URL`);
    }
    current = next;
  }
}

/** Reads up to `max` bytes of a body (an error page, for its message), then drops the rest. */
export async function readSome(body: Readable, max: number): Promise<string> {
  const parts: Buffer[] = [];
  let len = 0;
  try {
    for await (const c of body) {
      const b = Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array);
      parts.push(b);
      len += b.length;
      if (len >= max) break;
    }
  } catch {
    /* the message is best effort */
  } finally {
    body.destroy();
  }
  return Buffer.concat(parts).toString("utf8").slice(0, max);
}

export interface FetchToFileOptions extends OpenGetOptions, Omit<WriteToFileOptions, "signal"> {}

/** What `fetchToFile` got: the file written (status 200), or the answer that was not a body. */
export type FetchToFileResult = { status: 200; bytes: number; md5: string; url: URL } | { status: number; header: (name: string) => string | null; text: string; url: URL };

/**
 * GET `url` into `file`: `openGet` (redirects, host policy, pinned
 * connection), a Content-Length above `maxBytes` refused before a byte is
 * read, then `writeToFile` (cap, md5, large writes). A status other than 200
 * writes nothing and returns the status with up to 4 KiB of the body.
 */
export async function fetchToFile(url: URL, file: string, opts: FetchToFileOptions): Promise<FetchToFileResult> {
  const res = await openGet(url, opts);
  if (res.status !== 200) return { status: res.status, header: res.header, text: await readSome(res.body, 4096), url: res.url };
  const announced = contentLength(res);
  if (announced !== null && announced > opts.maxBytes) {
    res.body.destroy();
    throw opts.tooLarge(announced);
  }
  const r = await writeToFile(res.body, file, opts);
  return { status: 200, ...r, url: res.url };
}

/** The Content-Length a response announced, or null when absent or not a number. */
export function contentLength(res: OpenedGet): number | null {
  const v = res.header("content-length");
  if (v === null || !/^\d+$/.test(v.trim())) return null;
  return Number(v);
}
