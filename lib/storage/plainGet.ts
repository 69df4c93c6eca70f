/**
 * A GET over plain http whose body is read at the disk's speed: the socket
 * reads straight into large buffers (`net.Socket`'s `onread`), and the body is
 * handed on as views of those buffers, one per read, never copied.
 *
 * Why not node:http for http: its parser copies every body chunk out of the
 * socket's 64 KiB read buffer (two allocations and a copy per 64 KiB), and
 * that, with the GC it drives, was 0.6 s of CPU for a 256 MiB loopback
 * download where curl spends 0.05 s (issue 15; `node --cpu-prof`:
 * socketOnData 418 ms, GC 346 ms of 1.1 s). Reads of up to SLAB bytes into
 * buffers the body keeps bring it to curl's CPU. https still goes through
 * node:https (pinnedFetch.ts): TLS decryption copies anyway.
 *
 * The shape is the one downloads need and no more: one GET, `Connection:
 * close`, the response head parsed here (status, headers; 1xx skipped), a
 * body framed by Content-Length, chunked transfer coding or the connection's
 * end. Redirects are the caller's (openGet). A body cut short (the connection
 * closed before Content-Length bytes or the last chunk) fails the body
 * stream, as node:http's `aborted` does.
 *
 * States of one response: head → body (length | chunked | close) → done.
 */
import type * as Http from "node:http";
import type { IncomingHttpHeaders } from "node:http";
import { createRequire } from "node:module";
import net from "node:net";
import { Readable } from "node:stream";
import { toError } from "../errors.js";

// node:http's header checks are loaded at the first request, with require: an ES
// import of a built-in evaluates every export of its facade (node:http's includes
// undici: tens of ms of start-up for a one-shot command that never makes a request).
const load = createRequire(import.meta.url);

/** Bytes of one read buffer: the socket reads into its free tail until less than MIN_READ is left. */
const SLAB = 1 << 20;
const MIN_READ = 64 << 10;
/** A response head larger than this is refused (node:http's default is 16 KiB). */
const MAX_HEAD = 64 << 10;
/**
 * Interim (1xx) responses accepted before the final one. A server that sends
 * them without end would otherwise be parsed one after another from the same
 * read, each re-copying what is left of it: event-loop time quadratic in the
 * read (a 1 MiB read of 55,000 `100 Continue`s), with no body byte for the
 * watchdogs to count.
 */
const MAX_INTERIM = 16;
/** Body bytes buffered ahead of the reader before the socket is paused. */
const BODY_HWM = 4 << 20;
/** Slabs kept for reuse: what a reader holds (writeToFile's MAX_PENDING, BODY_HWM) with room to spare. */
const MAX_FREE = 32;

/**
 * A body stream's method, when it has one, to take back views it pushed once
 * the reader is done with them (written): their buffer is then read into
 * again instead of a new one (a fresh 1 MiB per MiB, and the GC and page
 * faults that come with it, were half the CPU of a download). A reader that
 * never calls it (or passes other buffers) only loses the reuse.
 */
export const recycle = Symbol("plainGet.recycle");
export type Recyclable = { [recycle]?: (views: Buffer[]) => void };

/**
 * Read buffers of one response. A slab is read into again once every view
 * pushed from it came back and the socket has moved past it.
 */
class SlabPool {
  private readonly refs = new Map<ArrayBufferLike, number>();
  private readonly free: Buffer[] = [];
  current = this.fresh();
  used = 0;

  private fresh(): Buffer {
    const b = this.free.pop() ?? Buffer.allocUnsafeSlow(SLAB);
    this.refs.set(b.buffer, 0);
    return b;
  }

  /** The free tail of the current slab, moving to another when less than MIN_READ is left. */
  space(): Buffer {
    if (SLAB - this.used < MIN_READ) {
      const old = this.current;
      this.current = this.fresh();
      this.used = 0;
      if (this.refs.get(old.buffer) === 0) this.retire(old);
    }
    return this.current.subarray(this.used);
  }

  /** A view of the current slab handed to the reader. */
  lend(view: Buffer): void {
    const n = this.refs.get(view.buffer);
    if (n !== undefined) this.refs.set(view.buffer, n + 1);
  }

  giveBack(views: Buffer[]): void {
    for (const v of views) {
      const n = this.refs.get(v.buffer);
      if (n === undefined) continue;
      this.refs.set(v.buffer, n - 1);
      if (n === 1 && v.buffer !== this.current.buffer) this.retire(Buffer.from(v.buffer, 0, SLAB));
    }
  }

  private retire(slab: Buffer): void {
    this.refs.delete(slab.buffer);
    if (this.free.length < MAX_FREE) this.free.push(slab);
  }
}

export interface PlainResponse {
  status: number;
  /** Lower-case names; a repeated header keeps its first value. */
  headers: IncomingHttpHeaders;
  body: Readable;
}

export class HttpProtocolError extends Error {
  readonly code = "HPE_INVALID";
}

type Framing = { kind: "length"; left: number } | { kind: "chunked" } | { kind: "close" } | { kind: "none" };

/** Parses one response head (without its final CRLF CRLF). */
function parseHead(text: string): { status: number; headers: IncomingHttpHeaders } {
  const lines = text.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? "");
  if (!m) throw new HttpProtocolError(`not an HTTP/1.x status line: ${JSON.stringify((lines[0] ?? "").slice(0, 100))}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(":");
    if (i <= 0 || /[\s]/.test(line[0]!)) throw new HttpProtocolError(`malformed header line: ${JSON.stringify(line.slice(0, 100))}`);
    const name = line.slice(0, i).trim().toLowerCase();
    if (!(name in headers)) headers[name] = line.slice(i + 1).trim();
  }
  return { status: Number(m[1]), headers };
}

function framingOf(status: number, headers: IncomingHttpHeaders): Framing {
  if (status === 204 || status === 304) return { kind: "none" };
  const te = headers["transfer-encoding"];
  if (typeof te === "string") return /(?:^|,)\s*chunked\s*$/i.test(te) ? { kind: "chunked" } : { kind: "close" };
  const cl = headers["content-length"];
  if (typeof cl === "string") {
    if (!/^\d+$/.test(cl)) throw new HttpProtocolError(`invalid Content-Length ${JSON.stringify(cl)}`);
    const n = Number(cl);
    return n === 0 ? { kind: "none" } : { kind: "length", left: n };
  }
  return { kind: "close" };
}

/**
 * The chunked transfer coding, decoded in place: `feed` returns the data
 * parts of a region as views of it (chunk-size lines, CRLFs and trailers are
 * skipped), and says when the last chunk and the trailer have been seen.
 */
class Dechunker {
  private state: "size" | "data" | "crlf" | "trailer" | "done" = "size";
  private line = "";
  private left = 0;

  get done(): boolean {
    return this.state === "done";
  }

  feed(region: Buffer, out: Buffer[]): void {
    let i = 0;
    while (i < region.length && this.state !== "done") {
      if (this.state === "data") {
        const k = Math.min(this.left, region.length - i);
        out.push(region.subarray(i, i + k));
        i += k;
        this.left -= k;
        if (this.left === 0) this.state = "crlf";
        continue;
      }
      const nl = region.indexOf(10, i);
      const end = nl < 0 ? region.length : nl;
      this.line += region.toString("latin1", i, end);
      if (this.line.length > 4096) throw new HttpProtocolError("a chunk-size or trailer line longer than 4 KiB");
      i = end;
      if (nl < 0) continue;
      i++;
      const line = this.line.endsWith("\r") ? this.line.slice(0, -1) : this.line;
      this.line = "";
      if (this.state === "crlf") {
        if (line !== "") throw new HttpProtocolError("chunk data not followed by CRLF");
        this.state = "size";
      } else if (this.state === "size") {
        const hex = (line.split(";")[0] ?? "").trim();
        if (!/^[0-9a-f]{1,13}$/i.test(hex)) throw new HttpProtocolError(`invalid chunk size ${JSON.stringify(line.slice(0, 40))}`);
        this.left = parseInt(hex, 16);
        this.state = this.left === 0 ? "trailer" : "data";
      } else if (line === "") this.state = "done";
    }
  }
}

/** The request: GET, the URL's Host, `headers` (validated: no CR/LF smuggled in), `Connection: close`. */
function requestHead(url: URL, headers: Record<string, string>): string {
  if (url.protocol !== "http:") throw new TypeError(`plainGet speaks http only, not ${url.protocol}`);
  const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
  const extra: Record<string, string> = { ...headers };
  if (url.username || url.password) {
    extra["authorization"] ??= "Basic " + Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString("base64");
  }
  for (const [name, value] of Object.entries(extra)) {
    if (/^(host|connection|content-length|transfer-encoding)$/i.test(name)) continue;
    const { validateHeaderName, validateHeaderValue } = load("node:http") as typeof Http;
    validateHeaderName(name);
    validateHeaderValue(name, value);
    lines.push(`${name}: ${value}`);
  }
  lines.push("Connection: close", "", "");
  return lines.join("\r\n");
}

/**
 * GETs `url` (http:) over one new connection to `addresses[0]` (policy-checked;
 * none: the system resolver), sending the URL's Host, `Connection: close` and
 * `headers`. Resolves with the status and headers once the head has arrived;
 * the body streams. Rejects on a network error, a malformed head, or `signal`
 * (which, once the head is in, destroys the body instead).
 */
export function plainGet(url: URL, addresses: string[], init: { signal?: AbortSignal; headers?: Record<string, string> } = {}): Promise<PlainResponse> {
  let request: string;
  try {
    request = requestHead(url, init.headers ?? {});
  } catch (e: unknown) {
    return Promise.reject(toError(e));
  }
  const host = addresses[0] ?? url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = Number(url.port || 80);

  return new Promise<PlainResponse>((resolve, reject) => {
    const pool = new SlabPool();
    let head: Buffer[] = [];
    let headBytes = 0;
    let interim = 0;
    let framing: Framing | null = null;
    const dechunk = new Dechunker();
    let body: Readable | null = null;
    let settled = false;

    const fail = (e: Error) => {
      socket.destroy();
      if (!settled) {
        settled = true;
        cleanup();
        reject(e);
      } else body?.destroy(e);
    };
    const onAbort = () => fail(init.signal?.reason instanceof Error ? init.signal.reason : new Error("aborted"));
    const cleanup = () => init.signal?.removeEventListener("abort", onAbort);

    /** Hands body views on; false when the reader is BODY_HWM behind (the socket then pauses). */
    const deliver = (views: Buffer[]): boolean => {
      let more = true;
      for (const v of views) {
        if (v.length === 0) continue;
        pool.lend(v);
        more = body!.push(v);
      }
      return more;
    };
    const finish = () => {
      body!.push(null);
      socket.destroy();
      cleanup();
    };

    /** The body part of a region (bytes after the head): framed, delivered. */
    const onBody = (region: Buffer): boolean => {
      const f = framing!;
      if (f.kind === "length") {
        const part = region.length > f.left ? region.subarray(0, f.left) : region;
        f.left -= part.length;
        const more = deliver([part]);
        if (f.left === 0) finish();
        return more;
      }
      if (f.kind === "chunked") {
        const views: Buffer[] = [];
        dechunk.feed(region, views);
        const more = deliver(views);
        if (dechunk.done) finish();
        return more;
      }
      return f.kind === "close" ? deliver([region]) : true;
    };

    /** One read's bytes: head first (copied, it is small), then body views. */
    const onRead = (region: Buffer): boolean => {
      if (framing) return onBody(region);
      head.push(Buffer.from(region));
      headBytes += region.length;
      const all = head.length === 1 ? head[0]! : Buffer.concat(head);
      const end = all.indexOf("\r\n\r\n", Math.max(0, headBytes - region.length - 3));
      if (end < 0) {
        if (headBytes > MAX_HEAD) throw new HttpProtocolError(`response head larger than ${MAX_HEAD} bytes`);
        head = [all];
        return true;
      }
      const parsed = parseHead(all.toString("latin1", 0, end));
      const rest = region.subarray(region.length - (headBytes - (end + 4)));
      if (parsed.status >= 100 && parsed.status < 200) {
        if (++interim > MAX_INTERIM) throw new HttpProtocolError(`more than ${MAX_INTERIM} interim (1xx) responses`);
        head = [];
        headBytes = 0;
        return rest.length > 0 ? onRead(rest) : true;
      }
      framing = framingOf(parsed.status, parsed.headers);
      body = Object.assign(
        new Readable({
          highWaterMark: BODY_HWM,
          read: () => socket.resume(),
          destroy: (err, cb) => {
            socket.destroy();
            cleanup();
            cb(err);
          },
        }),
        { [recycle]: (views: Buffer[]) => pool.giveBack(views) },
      );
      // An error in the very read that brought the head (a bad chunk size) comes before the
      // caller can listen: kept in `body.errored` for its reader (streams check it), not thrown.
      body.on("error", () => undefined);
      settled = true;
      resolve({ status: parsed.status, headers: parsed.headers, body });
      if (framing.kind === "none") {
        finish();
        return true;
      }
      return rest.length > 0 ? onBody(rest) : true;
    };

    const socket = net.connect({
      host,
      port,
      onread: {
        buffer: () => pool.space(),
        callback: (n: number) => {
          const region = pool.current.subarray(pool.used, pool.used + n);
          pool.used += n;
          try {
            return onRead(region);
          } catch (e: unknown) {
            fail(toError(e));
            return false;
          }
        },
      },
    });
    socket.setNoDelay(true);
    socket.on("error", fail);
    socket.on("end", () => {
      if (!framing) return fail(new HttpProtocolError("the connection closed before a response head"));
      if (framing.kind === "close") return finish();
      if (!body!.readableEnded && !body!.destroyed) fail(Object.assign(new Error("aborted: the connection closed before the body ended"), { code: "ECONNRESET" }));
    });
    socket.on("close", () => {
      if (!settled) fail(new HttpProtocolError("the connection closed before a response head"));
    });
    if (init.signal?.aborted) return onAbort();
    init.signal?.addEventListener("abort", onAbort, { once: true });
    socket.write(request);
  });
}
