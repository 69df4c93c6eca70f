/**
 * Downloads a dump to a job directory, streaming (a dump can be tens of GB
 * and never sits in memory):
 *
 *   source → writeToFile (md5, transferred bytes, MAX, 1 MiB writes) → <dir>/<name>.part → rename
 *   source → meter (md5, transferred bytes, MAX) → [node:zlib gunzip | zstd] → meter (decompressed bytes, MAX) → <dir>/<name>.part → rename
 *
 * The first line is an uncompressed dump, the common case, at the disk's
 * speed (fetchToFile.ts and plainGet.ts: the socket read into large buffers
 * for http, node's response body for https, no web-stream bridge, one pass);
 * the second a compressed one (the decompressor and its meter:
 * lib/core/decompress.ts, shared with `analyze`; a dump still compressed
 * after its layer is `unsupported_compression`).
 *
 * The md5 is computed only when the event gives one to verify: hashing on the
 * event loop is the largest CPU cost of a download (MD5 runs at ~600 MiB/s
 * here; a 256 MiB dump from a local s3rver went from ~180 to ~280 MiB/s
 * without it), and nobody reads a digest that is not checked.
 *
 * Compression is detected from the first bytes (peeked, then pushed back),
 * never from the name. MAX_DUMP_BYTES is checked before (expected size,
 * Content-Length, file size) and while bytes flow, on both sides of the
 * decompressor, so neither a lying server nor a zip bomb fills the disk.
 * On every failure the partial file is removed before the error is thrown.
 *
 * Which way an s3 location is fetched:
 * - a presigned URL that has not expired by its own X-Amz-Date/X-Amz-Expires
 *   is fetched as signed: it is what the agent meant, and it works even when
 *   the worker's credentials cannot read that bucket;
 * - otherwise (expired, unsigned, or s3://) GetObject on bucket/key when an S3
 *   client is configured for the same store (`clientServes`);
 * - a presigned GET answered with 401/403 (clock skew, early expiry) falls
 *   back to GetObject under the same condition.
 * The configured S3 endpoint is trusted (the operator set it); every URL
 * fetched, and every redirect hop (at most 5), passes `checkHostAllowed`, and
 * the connection goes to an address that check saw (pinnedFetch.ts).
 *
 * A `file` location (cfs://, file://) inside ALLOWED_FILE_ROOTS is opened
 * once and checked on the opened handle; when it is not compressed it is read
 * in place through that handle (`path` is /proc/<pid>/fd/<n>, `owned: false`,
 * `release()` closes it; copying a 20 GB core off a shared file system would
 * only cost time and disk); a compressed one is decompressed from the handle
 * into the job directory.
 */
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { S3Client } from "@aws-sdk/client-s3";
import { detectCompression, isDecompressionError, type Compression } from "../core/compression.js";
import { Meter, meteredDecompressor, refuseNestedCompression } from "../core/decompress.js";
import { CoreSightError, PermanentError, TransientError } from "../errors.js";
import { openAllowedFile } from "./hostPolicy.js";
import { contentLength, openGet, readSome, writeToFile, type OpenedGet } from "./fetchToFile.js";
import { confine } from "./workDir.js";
import { parseRetryAfter } from "../retry.js";
import { classifyS3Error, clientServes } from "./s3.js";
import { presignedExpiry, redactUrl, type DumpLocation } from "./url.js";

export interface DownloadOptions {
  location: DumpLocation;
  /** Job directory the dump is written into. */
  dir: string;
  /** Name of the file in `dir` (default "core"). */
  fileName?: string;
  /** Expected md5 of the transferred bytes: hex (any case) or base64; null/"" = not given. */
  md5?: string | null;
  /** Size the event announced; checked against maxBytes before connecting. */
  expectedSize?: number | null;
  maxBytes: number;
  s3?: S3Client | null;
  fetch?: typeof fetch;
  allowedHosts: string[];
  allowedFileRoots: string[];
  signal?: AbortSignal;
  /** Called as bytes flow (at most about once a second) with the bytes transferred so far. */
  onProgress?: (bytes: number) => void;
  /** Abort with TransientError("download_failed") after this long without a byte (default 60 s). */
  idleTimeoutMs?: number;
  /**
   * Abort with TransientError("download_failed") when the whole download
   * (connecting, redirects, body) takes longer (DOWNLOAD_TIMEOUT_MS; 0 or
   * absent: no deadline). Heartbeats do not extend it.
   */
  deadlineMs?: number;
  /**
   * Abort with TransientError("download_failed") when fewer bytes than this
   * per second arrived over the last `rateWindowMs` (DOWNLOAD_MIN_BYTES_PER_S;
   * 0 or absent: off): a body dripping a byte a second is not idle, but it
   * would hold a slot for days.
   */
  minBytesPerSecond?: number;
  /** The window the minimum rate is measured over (DOWNLOAD_RATE_WINDOW_MS, default 60 s). */
  rateWindowMs?: number;
  /** Clock for the presigned URL's expiry (default Date.now). */
  now?: () => number;
}

export interface Downloaded {
  path: string;
  /** Size on disk (decompressed). */
  bytes: number;
  /** Bytes received from the source; 0 when a file was read in place. */
  transferredBytes: number;
  compression: Compression | null;
  /** md5 (hex) of the bytes as transferred when `md5` was given (and matched); "" when there was none to verify. */
  md5: string;
  via: "presigned_url" | "http" | "s3_get_object" | "file";
  durationMs: number;
  /** False when `path` is the caller's original file (read in place): do not delete it. */
  owned: boolean;
  /** Set when `path` is an open handle's /proc path (a file read in place): call it when done with the dump. */
  release?: () => Promise<void>;
}

type Fetched = Omit<Downloaded, "durationMs">;

const HEAD_BYTES = 6;
const WRITE_HWM = 1 << 20;

function tooLarge(what: string, bytes: number, maxBytes: number): PermanentError {
  return new PermanentError("too_large", `dump is too large: ${what} ${bytes} bytes, more than MAX_DUMP_BYTES (${maxBytes})`);
}

function normalizeMd5(v: string | null | undefined): string | null {
  const s = (v ?? "").trim();
  if (!s) return null;
  if (/^[0-9a-f]{32}$/i.test(s)) return s.toLowerCase();
  if (/^[A-Za-z0-9+/]{22}==$/.test(s)) return Buffer.from(s, "base64").toString("hex");
  throw new PermanentError("invalid_event", `md5 ${JSON.stringify(s)} is neither 32 hex digits nor base64`);
}

function safeFileName(name: string | undefined): string {
  const base = path.basename(name ?? "core");
  return base && base !== "." && base !== ".." ? base : "core";
}

/**
 * Reads at least `n` bytes (or to the end) from `src` without consuming them:
 * they are pushed back with unshift, so whatever reads `src` next sees them.
 */
async function peekHead(src: Readable, n: number): Promise<{ head: Buffer; ended: boolean }> {
  const chunks: Buffer[] = [];
  let len = 0;
  let ended = false;
  while (len < n) {
    const c = src.read() as Buffer | null;
    if (c !== null) {
      const b = Buffer.isBuffer(c) ? c : Buffer.from(c);
      chunks.push(b);
      len += b.length;
      continue;
    }
    if (src.errored) throw src.errored;
    if (src.readableEnded) {
      ended = true;
      break;
    }
    if (src.destroyed) throw new Error("the source closed before any data");
    await new Promise<void>((resolve, reject) => {
      const cleanup = () => {
        src.off("readable", done);
        src.off("end", done);
        src.off("close", done);
        src.off("error", fail);
      };
      const done = () => {
        cleanup();
        resolve();
      };
      const fail = (e: Error) => {
        cleanup();
        reject(e);
      };
      src.on("readable", done);
      src.on("end", done);
      src.on("close", done);
      src.on("error", fail);
    });
  }
  const head = Buffer.concat(chunks);
  if (!ended && head.length > 0) src.unshift(head);
  return { head, ended };
}

async function closed(ws: fs.WriteStream): Promise<void> {
  if (ws.closed) return;
  await new Promise<void>((resolve) => {
    ws.once("close", resolve);
    if (!ws.destroyed) ws.destroy();
  });
}

function describeBody(text: string): string {
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
  if (code) return message ? `${code}: ${message}` : code;
  const t = text.replace(/\s+/g, " ").trim();
  return t.length > 200 ? t.slice(0, 200) + "…" : t;
}

/** Why a network operation failed, in a few words (undici hides it in `cause`). */
function reason(e: unknown): string {
  const err = e as { message?: string; code?: string; cause?: { code?: string; message?: string } };
  const c = err.cause;
  if (c && (c.code || c.message)) return [c.code, c.message].filter(Boolean).join(" ");
  return [err.code, err.message].filter(Boolean).join(" ") || String(e);
}

/** One download: its abort controller (caller's signal + watchdog: idle, deadline, minimum rate) and its options. */
class Transfer {
  readonly ctl = new AbortController();
  private readonly started = Date.now();
  private last = this.started;
  private lastProgress = 0;
  /** Bytes received so far over every attempt of this transfer (a GetObject fallback restarts its meter). */
  private total = 0;
  private attemptBytes = 0;
  private window = { at: this.started, bytes: 0 };
  private readonly timer: NodeJS.Timeout;
  private readonly unlink: () => void;
  readonly md5: string | null;
  readonly name: string;

  constructor(readonly opts: DownloadOptions) {
    this.md5 = normalizeMd5(opts.md5);
    this.name = safeFileName(opts.fileName);
    const signal = opts.signal;
    const onAbort = () => this.ctl.abort(signal?.reason ?? new Error("aborted"));
    signal?.addEventListener("abort", onAbort, { once: true });
    this.unlink = () => signal?.removeEventListener("abort", onAbort);
    const idle = opts.idleTimeoutMs ?? 60_000;
    const deadline = opts.deadlineMs ?? 0;
    const minRate = opts.minBytesPerSecond ?? 0;
    const rateWindow = opts.rateWindowMs ?? 60_000;
    const periods = [1000, idle / 4, ...(deadline > 0 ? [deadline / 4] : []), ...(minRate > 0 ? [rateWindow / 4] : [])];
    this.timer = setInterval(() => this.watch(idle, deadline, minRate, rateWindow), Math.max(10, Math.min(...periods)));
    this.timer.unref();
  }

  get signal(): AbortSignal {
    return this.ctl.signal;
  }

  /** The watchdog's tick: aborts a stalled, overlong or too slow download. */
  private watch(idle: number, deadline: number, minRate: number, rateWindow: number): void {
    const now = Date.now();
    const fail = (message: string) => this.ctl.abort(new TransientError("download_failed", message));
    if (now - this.last > idle) return fail(`download stalled: no data for ${Math.round(idle / 1000)} s`);
    if (deadline > 0 && now - this.started > deadline) {
      return fail(`download took longer than ${deadline} ms (DOWNLOAD_TIMEOUT_MS) after ${this.total} bytes`);
    }
    if (minRate > 0 && now - this.window.at >= rateWindow) {
      const rate = ((this.total - this.window.bytes) * 1000) / (now - this.window.at);
      if (rate < minRate) {
        return fail(`download too slow: ${Math.round(rate)} bytes/s over the last ${now - this.window.at} ms, below DOWNLOAD_MIN_BYTES_PER_S (${minRate})`);
      }
      this.window = { at: now, bytes: this.total };
    }
  }

  /** Called per chunk with the attempt's byte count: feeds the watchdog and the throttled progress callback. */
  readonly touch = (bytes: number): void => {
    const now = Date.now();
    this.last = now;
    this.total += bytes >= this.attemptBytes ? bytes - this.attemptBytes : bytes;
    this.attemptBytes = bytes;
    if (this.opts.onProgress && now - this.lastProgress >= 1000) {
      this.lastProgress = now;
      try {
        this.opts.onProgress(bytes);
      } catch {
        /* a failing heartbeat must not fail the download */
      }
    }
  };

  close(): void {
    clearInterval(this.timer);
    this.unlink();
  }

  /** Turns whatever a transfer threw into a classified error. */
  classify(e: unknown, what: string): CoreSightError {
    if (e instanceof CoreSightError) return e;
    if (this.ctl.signal.aborted) {
      const r: unknown = this.ctl.signal.reason;
      if (r instanceof CoreSightError) return r;
      return new TransientError("download_failed", `download of ${what} was aborted`, { cause: r });
    }
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOSPC" || code === "EDQUOT") {
      return new TransientError("download_failed", `no space left in ${this.opts.dir} while downloading ${what}`, { cause: e });
    }
    if (isDecompressionError(e)) {
      return new PermanentError("not_a_core", `the compressed dump ${what} is corrupt: ${(e as Error).message}`, { cause: e });
    }
    return new TransientError("download_failed", `download of ${what} failed: ${reason(e)}`, { cause: e });
  }

  private checkMd5(md5: string, what: string, bytes: number): void {
    if (this.md5 && md5 !== this.md5) {
      throw new PermanentError("md5_mismatch", `md5 of ${what} is ${md5}, the event says ${this.md5} (${bytes} bytes received)`);
    }
  }

  /**
   * Streams `src` into `<dir>/<name>`; on failure removes the partial file
   * and throws a classified error.
   */
  async toDisk(src: Readable, what: string): Promise<Omit<Fetched, "via" | "owned">> {
    const { dir, maxBytes } = this.opts;
    const dest = confine(dir, this.name);
    const tmp = `${dest}.part`;
    const onAbort = () => src.destroy(this.ctl.signal.reason instanceof Error ? this.ctl.signal.reason : new Error("aborted"));
    if (this.ctl.signal.aborted) onAbort();
    this.ctl.signal.addEventListener("abort", onAbort, { once: true });
    let ws: fs.WriteStream | null = null;
    try {
      const { head, ended } = await peekHead(src, HEAD_BYTES);
      const compression = detectCompression(head);
      const source = ended ? Readable.from(head.length > 0 ? [head] : []) : src;
      if (ended && src !== source) src.destroy();
      if (!compression) {
        const r = await writeToFile(source, tmp, {
          maxBytes,
          tooLarge: () => new PermanentError("too_large", `dump is too large: more than ${maxBytes} bytes transferred, the MAX_DUMP_BYTES limit`),
          md5: this.md5 !== null,
          onBytes: this.touch,
          signal: this.ctl.signal,
        });
        this.checkMd5(r.md5, what, r.bytes);
        await fsp.rename(tmp, dest);
        return { path: dest, bytes: r.bytes, transferredBytes: r.bytes, compression, md5: r.md5 };
      }
      const meter = new Meter(maxBytes, "transferred", this.md5 !== null, this.touch);
      const stages: Array<NodeJS.ReadableStream | NodeJS.WritableStream | NodeJS.ReadWriteStream> = [source, meter];
      const d = meteredDecompressor(compression, { maxBytes });
      stages.push(...d.stages);
      ws = fs.createWriteStream(tmp, { highWaterMark: WRITE_HWM });
      stages.push(ws);
      await pipeline(stages, { signal: this.ctl.signal });
      const md5 = meter.digest();
      this.checkMd5(md5, what, meter.bytes);
      // gzip around zstd: the inner layer would be expanded later, past this limit.
      await refuseNestedCompression(tmp, what, compression);
      await fsp.rename(tmp, dest);
      return { path: dest, bytes: d.meter.bytes, transferredBytes: meter.bytes, compression, md5 };
    } catch (e: unknown) {
      src.destroy();
      if (ws) await closed(ws);
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw this.classify(e, what);
    } finally {
      this.ctl.signal.removeEventListener("abort", onAbort);
    }
  }
}

async function statusError(res: OpenedGet, what: string): Promise<CoreSightError> {
  const detail = describeBody(await readSome(res.body, 4096));
  const s = res.status;
  const msg = `GET ${what} answered HTTP ${s}${detail ? ` (${detail})` : ""}`;
  if (s === 404 || s === 410) return new PermanentError("dump_not_found", msg);
  if (s === 401 || s === 403) return new PermanentError("dump_forbidden", msg);
  if (s === 408 || s === 425 || s === 429 || s >= 500) {
    const retryAfterMs = parseRetryAfter(res.header("retry-after"));
    return new TransientError("download_failed", msg, retryAfterMs === undefined ? {} : { retryAfterMs });
  }
  return new PermanentError("download_failed", msg);
}

/** GET with manual redirects, each hop checked against the host policy (fetchToFile.ts's openGet). */
async function fromUrl(t: Transfer, url: string, via: "presigned_url" | "http"): Promise<Fetched> {
  const what = redactUrl(url);
  let res: OpenedGet;
  try {
    // An injected fetch (tests, a proxy) connects as it likes; ours connects to the address each hop's check saw.
    res = await openGet(new URL(url), { allowedHosts: t.opts.allowedHosts, signal: t.signal, what, ...(t.opts.fetch ? { fetch: t.opts.fetch } : {}) });
  } catch (e: unknown) {
    throw t.classify(e, what);
  }
  if (res.status !== 200) throw await statusError(res, what);
  const len = contentLength(res);
  if (len !== null && len > t.opts.maxBytes) {
    res.body.destroy();
    throw tooLarge("Content-Length", len, t.opts.maxBytes);
  }
  const r = await t.toDisk(res.body, what);
  return { ...r, via, owned: true };
}

async function getObject(t: Transfer, client: S3Client, bucket: string, key: string): Promise<Fetched> {
  const what = `s3://${bucket}/${key}`;
  let body: Readable;
  try {
    const { GetObjectCommand } = await import("@aws-sdk/client-s3"); // a client exists, so the SDK is loaded already
    const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: t.signal });
    if (res.ContentLength !== undefined && res.ContentLength > t.opts.maxBytes) {
      (res.Body as Readable | undefined)?.destroy();
      throw tooLarge("ContentLength", res.ContentLength, t.opts.maxBytes);
    }
    body = res.Body instanceof Readable ? res.Body : Readable.from([]);
  } catch (e: unknown) {
    if (e instanceof CoreSightError) throw e;
    if (t.signal.aborted) throw t.classify(e, what);
    throw classifyS3Error(e, bucket, key);
  }
  const r = await t.toDisk(body, what);
  return { ...r, via: "s3_get_object", owned: true };
}

async function fromS3(t: Transfer, loc: Extract<DumpLocation, { kind: "s3" }>): Promise<Fetched> {
  const client = t.opts.s3 && (await clientServes(t.opts.s3, loc.endpoint)) ? t.opts.s3 : null;
  const where = `s3://${loc.bucket}/${loc.key}`;
  if (loc.url === null) {
    if (!client) {
      throw new PermanentError(
        "dump_forbidden",
        `${where} can only be read with S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and S3_ENDPOINT for a non-AWS store)`,
      );
    }
    return getObject(t, client, loc.bucket, loc.key);
  }
  const expiry = loc.presigned ? presignedExpiry(loc.url) : null;
  const expired = expiry !== null && expiry <= (t.opts.now ?? Date.now)();
  if (client && (expired || !loc.presigned)) return getObject(t, client, loc.bucket, loc.key);
  try {
    return await fromUrl(t, loc.url, loc.presigned ? "presigned_url" : "http");
  } catch (e: unknown) {
    if (!(e instanceof CoreSightError) || e.code !== "dump_forbidden") throw e;
    if (client) return getObject(t, client, loc.bucket, loc.key);
    const hint = t.opts.s3
      ? `the configured S3 endpoint does not serve ${loc.endpoint ?? "this store"}, so GetObject cannot be used`
      : "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and S3_ENDPOINT) to read it with GetObject";
    const exp = expired && expiry !== null ? `the presigned URL expired at ${new Date(expiry).toISOString()}; ` : "";
    throw new PermanentError("dump_forbidden", `${e.message}; ${exp}${hint}`, { cause: e });
  }
}

/**
 * A `file` location: opened once (openAllowedFile checks the opened handle),
 * and only that handle is read from then on. An uncompressed dump is not
 * copied: the path handed on is /proc/<pid>/fd/<n>, which every later reader
 * (inspect, eu-unstrip, gdb, children included) opens as this very file
 * whatever happens to its name meanwhile; `release` closes it.
 */
async function fromFile(t: Transfer, file: string): Promise<Fetched> {
  const { handle, real } = await openAllowedFile(file, t.opts.allowedFileRoots);
  let keep = false;
  try {
    const st = await handle.stat();
    if (st.size > t.opts.maxBytes) throw tooLarge("file", st.size, t.opts.maxBytes);
    const headBuf = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await handle.read(headBuf, 0, HEAD_BYTES, 0);
    const compression = detectCompression(headBuf.subarray(0, bytesRead));
    const read = () => handle.createReadStream({ start: 0, highWaterMark: WRITE_HWM, autoClose: false });
    if (compression) {
      const r = await t.toDisk(read(), real);
      return { ...r, via: "file", owned: true };
    }
    let md5 = "";
    if (t.md5) {
      const meter = new Meter(Number.MAX_SAFE_INTEGER, "read", true, t.touch);
      const sink = new Writable({ highWaterMark: WRITE_HWM, write: (_c, _e, cb) => cb() });
      try {
        await pipeline([read(), meter, sink], { signal: t.signal });
      } catch (e: unknown) {
        throw t.classify(e, real);
      }
      md5 = meter.digest();
      if (md5 !== t.md5) throw new PermanentError("md5_mismatch", `md5 of ${real} is ${md5}, the event says ${t.md5}`);
    }
    keep = true;
    return {
      path: `/proc/${process.pid}/fd/${handle.fd}`,
      bytes: st.size,
      transferredBytes: 0,
      compression: null,
      md5,
      via: "file",
      owned: false,
      release: () => handle.close(),
    };
  } finally {
    if (!keep) await handle.close().catch(() => undefined);
  }
}

/**
 * Fetches the dump at `opts.location` into `opts.dir` (see the module comment
 * for the order of ways). Errors: PermanentError dump_not_found,
 * dump_forbidden, too_large, md5_mismatch, host_not_allowed, unsupported_url,
 * unsupported_compression, not_a_core (corrupt gzip/zstd); TransientError
 * download_failed (5xx, 429, network, stalls, abort, disk full) with
 * `retryAfterMs` when the server sent Retry-After.
 */
export async function downloadDump(opts: DownloadOptions): Promise<Downloaded> {
  const started = performance.now();
  if (opts.expectedSize != null && opts.expectedSize > opts.maxBytes) throw tooLarge("the event announces", opts.expectedSize, opts.maxBytes);
  if (opts.signal?.aborted) throw new TransientError("download_failed", "download aborted before it started", { cause: opts.signal.reason });
  const t = new Transfer(opts);
  try {
    const loc = opts.location;
    let r: Fetched;
    if (loc.kind === "file") r = await fromFile(t, loc.path);
    else if (loc.kind === "http") r = await fromUrl(t, loc.url, "http");
    else r = await fromS3(t, loc);
    return { ...r, durationMs: Math.round(performance.now() - started) };
  } finally {
    t.close();
  }
}
