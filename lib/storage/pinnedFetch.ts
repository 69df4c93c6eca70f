/**
 * A GET that connects to the address the host policy checked, not to
 * whatever the name resolves to a moment later (DNS rebinding: a name that
 * answers a public address to the check and 127.0.0.1 or 169.254.169.254 to
 * the connection). node:http(s) with a `lookup` that returns the pinned
 * address; the URL's host still goes in the Host header and, for https, in
 * SNI and the certificate check. Node 20's global fetch (undici) takes no
 * lookup, hence this small client for the one request shape downloads make:
 * a GET, manual redirects, a streamed body.
 */
import type * as Http from "node:http";
import type { IncomingMessage } from "node:http";
import type * as Https from "node:https";
import { createRequire } from "node:module";
import net from "node:net";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";

// Loaded at the first request, with require, not an ES import: an ES import of a
// built-in evaluates every export of its facade (node:http's includes undici), and
// node:https loads TLS and the CA store; tens of ms of start-up for a one-shot
// command, such as analyze, that never makes a request.
const load = createRequire(import.meta.url);

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | Array<{ address: string; family: number }>, family?: number) => void;

/**
 * GETs `url` connecting only to one of `addresses` (the first; all are
 * policy-checked). With no addresses (a host the operator named exactly),
 * the system resolver is used as usual. Resolves with node's response
 * itself, whose body is a plain Readable (downloads stream it to disk without
 * a web-stream bridge: see fetchToFile.ts); never follows redirects.
 */
export function pinnedRequest(url: URL, addresses: string[], init: { signal?: AbortSignal; headers?: Record<string, string> } = {}): Promise<IncomingMessage> {
  const pinned = addresses[0];
  const lib = url.protocol === "https:" ? (load("node:https") as typeof Https) : (load("node:http") as typeof Http);
  return new Promise<IncomingMessage>((resolve, reject) => {
    const req = lib.request(
      url,
      {
        method: "GET",
        headers: init.headers ?? {},
        // One connection per request: a kept-alive socket would outlive the
        // download (and its check) in the global agent's pool.
        agent: false,
        ...(init.signal ? { signal: init.signal } : {}),
        ...(pinned
          ? {
              lookup: (_host: string, opts: { all?: boolean }, cb: LookupCallback) => {
                const family = net.isIPv6(pinned) ? 6 : 4;
                if (opts.all) cb(null, [{ address: pinned, family }]);
                else cb(null, pinned, family);
              },
            }
          : {}),
      },
      resolve,
    );
    req.on("error", reject);
    req.end();
  });
}

/** `pinnedRequest` as a WHATWG Response whose body streams (for callers that speak fetch). */
export async function pinnedFetch(url: URL, addresses: string[], init: { signal?: AbortSignal; headers?: Record<string, string> } = {}): Promise<Response> {
  const res = await pinnedRequest(url, addresses, init);
  const headers = new Headers();
  for (const [k, v] of Object.entries(res.headers)) {
    if (v === undefined) continue;
    for (const item of Array.isArray(v) ? v : [v]) headers.append(k, item);
  }
  const status = res.statusCode ?? 0;
  const noBody = status === 204 || status === 205 || status === 304;
  if (noBody) res.resume();
  const body = noBody ? null : (Readable.toWeb(res) as unknown as WebReadableStream<Uint8Array>);
  return new Response(body as unknown as ReadableStream<Uint8Array> | null, { status, statusText: res.statusMessage ?? "", headers });
}
