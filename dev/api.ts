/**
 * A stand-in for the CoreSight API, for tests, `make demo` and the bench. Not
 * the real API: it keeps everything in memory and exists so the worker's side
 * of the contract (docs/api.md) can be exercised against a real HTTP server.
 *
 * Routes:
 * - `GET  /api/v1/health`          → 200 `{"status":"ok"}` (no auth, never failed)
 * - `PUT  /api/v1/analyses/:id`    → stores a result document (201 new, 200
 *   replaced) or a running status (200; 409 once a result is stored)
 * - `GET  /api/v1/analyses/:id`    → the latest result, else the running status, else 404
 *
 * With a token, `/api/v1/analyses` requires `Authorization: Bearer <token>`
 * (401 otherwise). A result body is validated against the document schema
 * (400 with the offending fields), and its `analysis_id` must match the path.
 * `failNext` / `failFor` make the analyses routes answer an error status, to
 * play an outage.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ResultDocumentSchema } from "../lib/results/document.js";

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON, or the raw text when it is not JSON. */
  body: unknown;
}

/** Custom route: return true when it answered the request. */
export type DevApiHandler = (req: RecordedRequest, res: http.ServerResponse) => boolean | Promise<boolean>;

export interface DevApiServer {
  url: string;
  /** Every request, failed ones included, in arrival order. */
  requests: RecordedRequest[];
  /** Every accepted result body (completed/failed) by analysis_id, in order. */
  results: Map<string, unknown[]>;
  /** The last accepted running status by analysis_id. */
  running: Map<string, unknown>;
  /** The next `n` analyses requests answer `status` (with `body` and extra headers, e.g. Retry-After). */
  failNext(n: number, status: number, body?: string, headers?: Record<string, string>): void;
  /** Analyses requests answer `status` for the next `ms` milliseconds. */
  failFor(ms: number, status: number, body?: string): void;
  /** A handler consulted before the built-in routes (after recording); null removes it. */
  setHandler(handler: DevApiHandler | null): void;
  /** Closes the server and its connections. Idempotent. */
  stop(): Promise<void>;
}

const MAX_BODY = 64 * 1024 * 1024;
const ANALYSIS = /^\/api\/v1\/analyses\/([^/]+)$/;

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, { "content-type": typeof body === "string" ? "text/plain" : "application/json", ...headers });
  res.end(text);
}

async function readBody(req: http.IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Starts the stand-in API on a free loopback port. */
export async function startApiServer(opts: { token?: string; host?: string; port?: number } = {}): Promise<DevApiServer> {
  const requests: RecordedRequest[] = [];
  const results = new Map<string, unknown[]>();
  const running = new Map<string, unknown>();
  let failCount = 0;
  let failStatus = 500;
  let failBody = "";
  let failHeaders: Record<string, string> = {};
  let failUntil = 0;
  let failUntilStatus = 503;
  let failUntilBody = "";
  let handler: DevApiHandler | null = null;

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const raw = await readBody(req);
    if (raw === null) return send(res, 413, { error: "payload_too_large" });
    let body: unknown = raw;
    if (raw !== "") {
      try {
        body = JSON.parse(raw) as unknown;
      } catch {
        body = raw;
      }
    }
    const rec: RecordedRequest = { method: req.method ?? "GET", path, headers: req.headers, body };
    requests.push(rec);
    if (handler && (await handler(rec, res))) return;

    if (path === "/api/v1/health") {
      return rec.method === "GET" ? send(res, 200, { status: "ok" }) : send(res, 405, { error: "method_not_allowed" });
    }
    const m = ANALYSIS.exec(path);
    if (!m) return send(res, 404, { error: "not_found" });

    if (failCount > 0) {
      failCount--;
      return send(res, failStatus, failBody, failHeaders);
    }
    if (Date.now() < failUntil) return send(res, failUntilStatus, failUntilBody);

    if (opts.token !== undefined && req.headers.authorization !== `Bearer ${opts.token}`) {
      return send(res, 401, { error: "unauthorized", message: "missing or wrong bearer token" });
    }
    let id: string;
    try {
      id = decodeURIComponent(m[1]!);
    } catch {
      return send(res, 400, { error: "bad_request", message: "bad analysis id encoding" });
    }

    if (rec.method === "GET") {
      const docs = results.get(id);
      if (docs && docs.length > 0) return send(res, 200, docs[docs.length - 1]);
      if (running.has(id)) return send(res, 200, running.get(id));
      return send(res, 404, { error: "not_found", message: `no analysis ${id}` });
    }
    if (rec.method !== "PUT") return send(res, 405, { error: "method_not_allowed" });

    if (body === null || typeof body !== "object" || Array.isArray(body)) {
      return send(res, 400, { error: "bad_request", message: "body must be a JSON object" });
    }
    const doc = body as Record<string, unknown>;
    if (doc.analysis_id !== id) {
      return send(res, 400, { error: "bad_request", message: `analysis_id ${JSON.stringify(doc.analysis_id)} does not match the path (${id})` });
    }
    if (doc.status === "running") {
      if (results.has(id)) return send(res, 409, { error: "conflict", message: "a result is already stored" });
      running.set(id, doc);
      return send(res, 200, { analysis_id: id, status: "running" });
    }
    const parsed = ResultDocumentSchema.safeParse(doc);
    if (!parsed.success) {
      const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
      return send(res, 400, { error: "invalid_result", message: issues.join("; ") });
    }
    const list = results.get(id);
    if (list) list.push(doc);
    else results.set(id, [doc]);
    running.delete(id);
    return send(res, list ? 200 : 201, { analysis_id: id, status: "stored" });
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, 500, { error: "internal", message: String(e) });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;

  let stopping: Promise<void> | null = null;
  return {
    url: `http://${host}:${addr.port}`,
    requests,
    results,
    running,
    failNext(n, status, body = "", headers = {}) {
      failCount = n;
      failStatus = status;
      failBody = body;
      failHeaders = headers;
    },
    failFor(ms, status, body = "") {
      failUntil = Date.now() + ms;
      failUntilStatus = status;
      failUntilBody = body;
    },
    setHandler(h) {
      handler = h;
    },
    stop() {
      return (stopping ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }));
    },
  };
}
