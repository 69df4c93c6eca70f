/**
 * The CoreSight API's HTTP routes (node:http, no framework: a dozen routes
 * and full control over when a 2xx is sent).
 *
 * | route                                   | token           |
 * |-----------------------------------------|-----------------|
 * | POST /, POST /api/v1/events             | agent           |
 * | PUT  /api/v1/analyses/{id}              | worker          |
 * | GET  /api/v1/analyses, /analyses/{id}   | worker or read  |
 * | POST /api/v1/analyses/{id}/reprocess    | worker          |
 * | GET  /api/v1/groups, /groups/{hash}     | worker or read  |
 * | PATCH /api/v1/groups/{hash}             | worker          |
 * | GET  /api/v1/health, /metrics           | none            |
 * | GET  /, /ui/...  (the crash browser)    | api/ui/routes.ts|
 *
 * Invariant of ingest: the 202 is written only after the transaction that
 * holds the coredump, the analysis and the outbox row has committed.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import * as z from "zod";
import { toError } from "../lib/errors.js";
import { issueText, type EventContext } from "../lib/events.js";
import type { Logger } from "../lib/log.js";
import { ResultDocumentSchema, EventContextSchema } from "../lib/results/document.js";
import { bearerToken, type Authenticator, type Role } from "./auth.js";
import type { Db } from "./db/connect.js";
import { acceptReport, getAnalysis, getGroup, listAnalyses, listGroups, requeueAnalysis, setResolved, storeResult, type AnalysisCursor, type StoreOutcome } from "./db/queries.js";
import type { NewCoredump, NotificationKind } from "./db/schema.js";
import { ApiError } from "./errors.js";
import { cloudEventOf, coredumpOf, queuedEvent, validateReport } from "./ingest.js";
import type { ApiMetrics } from "./metrics.js";
import { notificationText } from "./notify.js";
import { openApiDocument } from "./openapi.js";
import type { Publisher } from "./outbox.js";
import { createUiHandler, isUiRequest } from "./ui/routes.js";
import { AnalysisQuerySchema, GroupQuerySchema, PatchGroupSchema, RunningStatusSchema } from "./schemas.js";
import { analysisDetail, analysisSummary, groupDetailView, groupView } from "./views.js";

export interface ServerDeps {
  db: Db;
  auth: Authenticator;
  publisher: Publisher;
  metrics: ApiMetrics;
  logger: Logger;
  maxBodyBytes: number;
  /** Webhook channels for new/regressed groups, and who sends what they queue. */
  notify?: { channels: readonly string[]; notifier: { wake(): void } };
  now?: () => string;
}

const READERS: readonly Role[] = ["worker", "read"];
const ANALYSIS = /^\/api\/v1\/analyses\/([^/]+)$/;
const REPROCESS = /^\/api\/v1\/analyses\/([^/]+)\/reprocess$/;
const GROUP = /^\/api\/v1\/groups\/([^/]+)$/;

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body) + "\n";
  res.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

async function readBody(req: http.IncomingMessage, max: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  const tooLarge = () => new ApiError(413, "payload_too_large", `body: larger than the limit of ${max} bytes (API_MAX_BODY_BYTES)`, { headers: { connection: "close" } });
  if (Number.isFinite(declared) && declared > max) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function segment(raw: string, what: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ApiError(400, "bad_request", `${what}: bad percent-encoding in the path`);
  }
}

function jsonObject(body: Buffer): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(body.toString("utf8"));
  } catch {
    throw new ApiError(400, "invalid_json", `the body is not JSON (${body.length} bytes)`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new ApiError(400, "bad_request", "(root): expected a JSON object");
  return v as Record<string, unknown>;
}

function zodFail(e: z.ZodError): ApiError {
  const issues = e.issues.slice(0, 6).map(issueText);
  if (e.issues.length > issues.length) issues.push(`and ${e.issues.length - issues.length} more`);
  return new ApiError(400, "invalid_document", issues.join("; "));
}

const RunningSchema = RunningStatusSchema.extend({ event: EventContextSchema.nullish() });

function encodeCursor(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString("base64url");
}

function decodeCursor<T>(raw: string | undefined, schema: z.ZodType<T>): T | null {
  if (raw === undefined || raw === "") return null;
  try {
    return schema.parse(JSON.parse(Buffer.from(raw, "base64url").toString("utf8")));
  } catch {
    throw new ApiError(400, "bad_request", "cursor: not a cursor this API returned");
  }
}

const AnalysisCursorSchema: z.ZodType<AnalysisCursor> = z.object({ created_at: z.string(), analysis_id: z.string() });
const GroupCursorSchema = z.object({ offset: z.number().int().nonnegative() });

function queryOf(url: URL): Record<string, string> {
  const q: Record<string, string> = {};
  for (const [k, v] of url.searchParams) q[k] = v;
  return q;
}

/** The coredump row for an analysis the API first hears of from a worker's PUT. */
function coredumpFromContext(ctx: EventContext | null | undefined, now: string): Omit<NewCoredump, "id"> {
  return {
    received_at: now,
    event_id: ctx?.event_id ?? "",
    event_source: ctx?.event_source ?? "",
    file_url: ctx?.file_url ?? "",
    file_name: ctx?.file_name ?? null,
    executable_path: ctx?.executable_path ?? null,
    file_size: ctx?.file_size ?? null,
    md5: ctx?.md5 ?? null,
    image: ctx?.image ?? null,
    pod: ctx?.pod ?? null,
    namespace: ctx?.namespace ?? null,
    node: ctx?.node ?? null,
    timestamp: ctx?.timestamp ?? null,
  };
}

export function createRequestHandler(deps: ServerDeps): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const { db, auth, publisher, metrics, logger } = deps;
  const now = deps.now ?? (() => new Date().toISOString());
  const k = db.kysely;
  const tokenOf = (req: http.IncomingMessage) => bearerToken(req.headers.authorization);
  let openApiCache: unknown;
  const openApi = () => (openApiCache ??= openApiDocument());
  const ui = createUiHandler({ db, auth, publisher, logger, now, readBody: (req) => readBody(req, deps.maxBodyBytes) });

  async function ingest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const headerToken = tokenOf(req);
    // With a header, authenticate before reading anything else; CoreDog also
    // copies the token into the body, which is used only when the header is absent.
    if (headerToken !== undefined) await auth.require(headerToken, ["agent"]);
    const body = await readBody(req, deps.maxBodyBytes);
    let event: Record<string, unknown>;
    try {
      event = cloudEventOf(req, body);
    } catch (e: unknown) {
      if (headerToken === undefined) await auth.require(undefined, ["agent"]);
      throw e;
    }
    if (headerToken === undefined) await auth.require(typeof event.token === "string" ? event.token : undefined, ["agent"]);
    const report = validateReport(event);
    const receivedAt = now();
    const accepted = await acceptReport(k, {
      analysisId: report.analysisId,
      coredump: coredumpOf(report.event, receivedAt),
      payload: (id) => queuedEvent(report.event, id),
      now: receivedAt,
    });
    // Committed: from here the report survives a crash, and the outbox publishes it.
    metrics.reports.inc({ outcome: accepted.created ? "created" : "duplicate" });
    if (accepted.created) publisher.wake();
    logger.info(
      {
        analysis_id: accepted.analysis_id,
        coredump_id: accepted.coredump_id,
        event_id: report.event.id,
        pod: report.event.data.pod_name ?? null,
        namespace: report.event.data.pod_namespace ?? null,
        duplicate: !accepted.created,
      },
      accepted.created ? "report accepted" : "repeated report: already accepted",
    );
    send(res, accepted.created ? 202 : 200, { coredump_id: accepted.coredump_id, analysis_id: accepted.analysis_id, status: accepted.status });
  }

  async function putAnalysis(req: http.IncomingMessage, res: http.ServerResponse, id: string): Promise<void> {
    await auth.require(tokenOf(req), ["worker"]);
    const body = await readBody(req, deps.maxBodyBytes);
    const obj = jsonObject(body);
    if (obj.analysis_id !== id) {
      throw new ApiError(400, "invalid_document", `analysis_id: ${JSON.stringify(obj.analysis_id)} does not match the path (${id})`);
    }
    const at = now();
    let outcome: StoreOutcome;
    let status: "running" | "completed" | "failed";
    if (obj.status === "running") {
      const parsed = RunningSchema.safeParse(obj);
      if (!parsed.success) throw zodFail(parsed.error);
      status = "running";
      outcome = await storeResult(k, {
        analysisId: id,
        status,
        now: at,
        documentJson: "",
        signature: null,
        quality: null,
        errorCode: null,
        signalName: null,
        attempt: null,
        workerId: null,
        startedAt: parsed.data.started_at ?? null,
        coredump: coredumpFromContext(parsed.data.event, at),
      });
    } else {
      const parsed = ResultDocumentSchema.safeParse(obj);
      if (!parsed.success) throw zodFail(parsed.error);
      const doc = parsed.data;
      status = doc.status;
      outcome = await storeResult(k, {
        analysisId: id,
        status,
        now: at,
        documentJson: body.toString("utf8"),
        signature: doc.signature ? { hash: doc.signature.hash, text: doc.signature.text, frames: doc.signature.frames } : null,
        quality: doc.quality,
        errorCode: doc.error?.code ?? null,
        signalName: doc.signal?.name ?? null,
        attempt: doc.attempt,
        workerId: doc.worker_id,
        startedAt: null,
        coredump: coredumpFromContext(doc.event, at),
        ...(deps.notify ? { notify: { channels: deps.notify.channels, message: (kind: NotificationKind) => notificationText(kind, doc, doc.event) } } : {}),
      });
      if (deps.notify && outcome !== "conflict") deps.notify.notifier.wake();
    }
    metrics.results.inc({ status, outcome });
    if (outcome === "conflict") {
      return send(res, 409, { error: "conflict", message: `analysis ${id} already has a result; a running status does not replace it` });
    }
    logger.info({ analysis_id: id, status, outcome }, status === "running" ? "analysis running" : "result stored");
    send(res, outcome === "created" ? 201 : 200, { analysis_id: id, status });
  }

  async function health(res: http.ServerResponse): Promise<void> {
    let database = "ok";
    try {
      await db.ping();
    } catch (e: unknown) {
      database = `unavailable: ${toError(e).message}`;
    }
    const nats = publisher.natsProblem() ?? "ok";
    const ok = database === "ok" && nats === "ok";
    send(res, ok ? 200 : 503, { status: ok ? "ok" : "unavailable", database, nats });
  }

  async function analyses(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    await auth.require(tokenOf(req), READERS);
    const q = AnalysisQuerySchema.safeParse(queryOf(url));
    if (!q.success) throw zodFail(q.error);
    const { limit, cursor, ...filters } = q.data;
    const page = await listAnalyses(k, filters, limit, decodeCursor(cursor, AnalysisCursorSchema));
    send(res, 200, { items: page.items.map(analysisSummary), next_cursor: page.next ? encodeCursor(page.next) : null });
  }

  async function reprocess(req: http.IncomingMessage, res: http.ServerResponse, id: string): Promise<void> {
    await auth.require(tokenOf(req), ["worker"]);
    const a = await requeueAnalysis(k, id, now());
    if (!a) throw new ApiError(404, "not_found", `no analysis ${id}`);
    publisher.wake();
    logger.info({ analysis_id: id, reprocess_count: a.reprocess_count }, "analysis queued again");
    send(res, 202, { coredump_id: a.coredump_id, analysis_id: id, status: a.status });
  }

  async function analysis(req: http.IncomingMessage, res: http.ServerResponse, id: string): Promise<void> {
    await auth.require(tokenOf(req), READERS);
    const a = await getAnalysis(k, id);
    if (!a) throw new ApiError(404, "not_found", `no analysis ${id}`);
    send(res, 200, analysisDetail(a));
  }

  async function groups(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    await auth.require(tokenOf(req), READERS);
    const q = GroupQuerySchema.safeParse(queryOf(url));
    if (!q.success) throw zodFail(q.error);
    const offset = decodeCursor(q.data.cursor, GroupCursorSchema)?.offset ?? 0;
    const page = await listGroups(k, q.data.limit, offset);
    send(res, 200, { items: page.items.map(groupView), next_cursor: page.more ? encodeCursor({ offset: offset + q.data.limit }) : null });
  }

  async function group(req: http.IncomingMessage, res: http.ServerResponse, hash: string, patch: boolean): Promise<void> {
    if (patch) {
      await auth.require(tokenOf(req), ["worker"]);
      const parsed = PatchGroupSchema.safeParse(jsonObject(await readBody(req, deps.maxBodyBytes)));
      if (!parsed.success) throw zodFail(parsed.error);
      if (!(await setResolved(k, hash, parsed.data.resolved ? now() : null))) throw new ApiError(404, "not_found", `no crash group ${hash}`);
      logger.info({ signature_hash: hash, resolved: parsed.data.resolved }, parsed.data.resolved ? "crash group resolved" : "crash group unresolved");
    } else {
      await auth.require(tokenOf(req), READERS);
    }
    const g = await getGroup(k, hash);
    if (!g) throw new ApiError(404, "not_found", `no crash group ${hash}`);
    send(res, 200, groupDetailView(g));
  }

  /**
   * The API's routes (the crash browser's come first, from api/ui/routes.ts):
   * a path (or a pattern whose group is the one path parameter), the methods
   * it allows (anything else is a 405 with Allow), and the handler, which
   * answers and names the route for the request metric.
   */
  const routes: Array<{
    path: string | RegExp;
    allow: string;
    handle: (req: http.IncomingMessage, res: http.ServerResponse, ctx: { url: URL; method: string; param: string }) => Promise<string>;
  }> = [
    { path: "/", allow: "GET,POST", handle: async (req, res) => (await ingest(req, res), "ingest") },
    { path: "/api/v1/events", allow: "POST", handle: async (req, res) => (await ingest(req, res), "ingest") },
    { path: "/api/v1/health", allow: "GET", handle: async (_req, res) => (await health(res), "health") },
    { path: "/api/v1/openapi.json", allow: "GET", handle: async (_req, res) => (send(res, 200, openApi()), "openapi") },
    {
      path: "/metrics",
      allow: "GET",
      handle: async (_req, res) => {
        res.writeHead(200, { "content-type": metrics.registry.contentType }).end(await metrics.registry.metrics());
        return "metrics";
      },
    },
    { path: "/api/v1/analyses", allow: "GET", handle: async (req, res, { url }) => (await analyses(req, res, url), "analyses") },
    { path: REPROCESS, allow: "POST", handle: async (req, res, { param }) => (await reprocess(req, res, segment(param, "analysis id")), "reprocess") },
    {
      path: ANALYSIS,
      allow: "GET,PUT",
      handle: async (req, res, { method, param }) => {
        const id = segment(param, "analysis id");
        if (method === "PUT") return (await putAnalysis(req, res, id), "put_analysis");
        return (await analysis(req, res, id), "analysis");
      },
    },
    { path: "/api/v1/groups", allow: "GET", handle: async (req, res, { url }) => (await groups(req, res, url), "groups") },
    {
      path: GROUP,
      allow: "GET,PATCH",
      handle: async (req, res, { method, param }) => (await group(req, res, segment(param, "signature hash"), method === "PATCH"), method === "PATCH" ? "patch_group" : "group"),
    },
  ];

  async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<string> {
    const url = new URL(req.url ?? "/", "http://api");
    const p = url.pathname.replace(/\/+$/, "") || "/";
    const method = req.method ?? "GET";
    if (isUiRequest(p, method)) return ui(req, res, url, p);
    for (const r of routes) {
      const m = typeof r.path === "string" ? (r.path === p ? [p] : null) : r.path.exec(p);
      if (!m) continue;
      if (!r.allow.split(",").includes(method)) throw new ApiError(405, "method_not_allowed", `${method} ${p}: allowed ${r.allow}`, { headers: { allow: r.allow } });
      return r.handle(req, res, { url, method, param: m[1] ?? "" });
    }
    throw new ApiError(404, "not_found", `no route ${method} ${p}`);
  }

  return (req, res) => {
    const end = metrics.requestSeconds.startTimer();
    let name = "error";
    route(req, res)
      .then((r) => {
        name = r;
      })
      .catch((e: unknown) => {
        const err = toError(e);
        if (err instanceof ApiError) {
          metrics.rejected.inc({ status: String(err.status) });
          if (err.status >= 500) logger.error({ err: err.message }, "request failed");
          else logger.info({ status: err.status, error: err.code, message: err.message, method: req.method, path: (req.url ?? "").split("?")[0] }, "request rejected");
          // A 413 carries `connection: close`: node closes the socket once the answer is out, unread body and all.
          if (!res.headersSent) send(res, err.status, { error: err.code, message: err.message }, err.headers);
          return;
        }
        // The database is down, or a bug: the client may retry; nothing was acknowledged.
        logger.error({ err }, "request failed");
        if (!res.headersSent) send(res, 503, { error: "unavailable", message: "the request could not be completed; nothing was stored" }, { "retry-after": "5" });
        else res.destroy();
      })
      .finally(() => end({ route: name }));
  };
}

export interface ApiHttpServer {
  server: http.Server;
  port: number;
  host: string;
  close(): Promise<void>;
}

/**
 * Listens on host:port. close() stops taking connections and lets in-flight
 * requests finish for up to `graceMs`, then cuts the rest: a request cut
 * before its commit got no 2xx, so the agent saw a failure, not a loss.
 */
export async function listen(handler: http.RequestListener, host: string, port: number, graceMs = 30_000): Promise<ApiHttpServer> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  let closing: Promise<void> | null = null;
  return {
    server,
    port: addr.port,
    host,
    close() {
      closing ??= new Promise<void>((resolve) => {
        const cut = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
