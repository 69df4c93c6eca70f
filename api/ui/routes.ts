/**
 * The crash browser's routes, served by `coresight-worker api` itself:
 *
 * | route                                  | who                      |
 * |----------------------------------------|--------------------------|
 * | GET  /, /ui                            | redirect to /ui/groups   |
 * | GET  /ui/static/app.css, queue.js      | anyone                   |
 * | GET, POST /ui/login; POST /ui/logout   | anyone                   |
 * | GET  /ui/groups, /ui/groups/{hash}     | read or worker session   |
 * | GET  /ui/analyses/{id}[/result.json]   | read or worker session   |
 * | GET  /ui/queue, /ui/queue.json         | read or worker session   |
 * | POST /ui/groups/{hash}/resolve         | worker session + CSRF    |
 * | POST /ui/analyses/{id}/reprocess       | worker session + CSRF    |
 *
 * POST / stays the agent's ingest (api/server.ts). A session is the
 * HttpOnly cookie of api/ui/session.ts, or an Authorization: Bearer header
 * (scripts, the bench); a bearer request needs no CSRF value because no
 * browser attaches that header by itself. Every HTML answer carries a CSP
 * that allows no inline script or style and nothing from another origin.
 */
import type http from "node:http";
import * as z from "zod";
import { toError } from "../../lib/errors.js";
import type { Logger } from "../../lib/log.js";
import type { ResultDocument } from "../../lib/results/document.js";
import { bearerToken, type Authenticator } from "../auth.js";
import type { Db } from "../db/connect.js";
import {
  bestResults,
  browseDays,
  browseFacets,
  browseGroups,
  getAnalysis,
  getGroup,
  listAnalyses,
  queueCounts,
  requeueAnalysis,
  setResolved,
  type AnalysisCursor,
} from "../db/queries.js";
import { ApiError } from "../errors.js";
import { analysisPage } from "./analysisPage.js";
import type { PageContext } from "./components.js";
import { groupPage } from "./groupPage.js";
import { browseFiltersOf, groupsPage, GroupListQuerySchema, selectPage, sparkDays } from "./groupsPage.js";
import { hrefOf, seg, type SafeHtml } from "./html.js";
import { errorPage, loginPage } from "./loginPage.js";
import { QUEUE_SCRIPT, queuePage } from "./queuePage.js";
import { clearedCookie, csrfOf, csrfValid, sameOrigin, sessionCookie, sessionToken } from "./session.js";
import { STYLESHEET } from "./style.js";

export interface UiDeps {
  db: Db;
  auth: Authenticator;
  publisher: { wake(): void };
  logger: Logger;
  now: () => string;
  readBody: (req: http.IncomingMessage) => Promise<Buffer>;
}

export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const SECURITY_HEADERS = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on our own form posts.
  "referrer-policy": "same-origin",
  "x-frame-options": "DENY",
  "cache-control": "no-store",
};

const GROUP = /^\/ui\/groups\/([^/]+)$/;
const RESOLVE = /^\/ui\/groups\/([^/]+)\/resolve$/;
const ANALYSIS = /^\/ui\/analyses\/([^/]+)$/;
const RESULT_JSON = /^\/ui\/analyses\/([^/]+)\/result\.json$/;
const REPROCESS = /^\/ui\/analyses\/([^/]+)\/reprocess$/;

/** Whether the crash browser answers this request (POST / is the ingest's). */
export function isUiRequest(p: string, method: string): boolean {
  return (p === "/" && method === "GET") || p === "/ui" || p.startsWith("/ui/");
}

/** A same-site path to go back to after a form; anything else becomes the group list. */
export function safeNext(v: string | null | undefined): string {
  if (!v || !v.startsWith("/") || v.startsWith("//") || v.includes("\\") || /[\u0000-\u001f]/.test(v)) return "/ui/groups";
  return v;
}

function sendHtml(res: http.ServerResponse, status: number, body: SafeHtml, headers: Record<string, string> = {}): void {
  const text = body.text;
  res.writeHead(status, { "content-type": "text/html; charset=utf-8", "content-length": String(Buffer.byteLength(text)), ...SECURITY_HEADERS, ...headers });
  res.end(text);
}

function sendJson(res: http.ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)), ...SECURITY_HEADERS, ...headers });
  res.end(text);
}

function sendText(res: http.ServerResponse, type: string, text: string, status = 200): void {
  res.writeHead(status, { "content-type": type, "content-length": String(Buffer.byteLength(text)), ...SECURITY_HEADERS, "cache-control": "max-age=300" });
  res.end(text);
}

function redirect(res: http.ServerResponse, to: string, headers: Record<string, string> = {}): void {
  res.writeHead(303, { location: to, "content-length": "0", ...SECURITY_HEADERS, ...headers });
  res.end();
}

function segment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ApiError(400, "bad_request", "bad percent-encoding in the path");
  }
}

function parseDoc(json: string | null): (Partial<ResultDocument> & Record<string, unknown>) | null {
  if (json === null || json === "") return null;
  try {
    return JSON.parse(json) as Partial<ResultDocument> & Record<string, unknown>;
  } catch {
    return null;
  }
}

const CursorSchema: z.ZodType<AnalysisCursor> = z.object({ created_at: z.string(), analysis_id: z.string() });

function cursorOf(raw: string | null): AnalysisCursor | null {
  if (!raw) return null;
  try {
    return CursorSchema.parse(JSON.parse(Buffer.from(raw, "base64url").toString("utf8")));
  } catch {
    throw new ApiError(400, "bad_request", "before: not a position this page gave");
  }
}

export function createUiHandler(deps: UiDeps): (req: http.IncomingMessage, res: http.ServerResponse, url: URL, p: string) => Promise<string> {
  const { db, auth, logger } = deps;
  const k = db.kysely;

  async function form(req: http.IncomingMessage): Promise<URLSearchParams> {
    return new URLSearchParams((await deps.readBody(req)).toString("utf8"));
  }

  /** The session's token and role, or null (no credentials, unknown token, or an agent token). */
  async function session(req: http.IncomingMessage): Promise<{ token: string; role: "worker" | "read"; bearer: boolean } | null> {
    const header = bearerToken(req.headers.authorization);
    const token = header ?? sessionToken(req);
    if (token === undefined) return null;
    const role = await auth.roleOf(token);
    return role === "worker" || role === "read" ? { token, role, bearer: header !== undefined } : null;
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL, p: string): Promise<string> {
    const method = req.method ?? "GET";
    const nowDate = new Date(deps.now());
    const anon: PageContext = { role: null, csrf: "", now: nowDate };
    const only = (allowed: string) => {
      if (!allowed.split(",").includes(method)) throw new ApiError(405, "method_not_allowed", `${method} ${p}: allowed ${allowed}`, { headers: { allow: allowed } });
    };

    if (p === "/" || p === "/ui") {
      only("GET");
      redirect(res, "/ui/groups");
      return "ui_root";
    }
    if (p === "/ui/static/app.css") {
      only("GET");
      sendText(res, "text/css; charset=utf-8", STYLESHEET);
      return "ui_static";
    }
    if (p === "/ui/static/queue.js") {
      only("GET");
      sendText(res, "text/javascript; charset=utf-8", QUEUE_SCRIPT);
      return "ui_static";
    }
    if (p === "/ui/login") {
      only("GET,POST");
      if (method === "GET") {
        const next = safeNext(url.searchParams.get("next"));
        if (await session(req)) {
          redirect(res, next);
        } else {
          sendHtml(res, 200, loginPage(anon, next, null));
        }
        return "ui_login";
      }
      if (!sameOrigin(req)) throw new ApiError(403, "forbidden", "a sign-in from another site's page is refused");
      const f = await form(req);
      const token = (f.get("token") ?? "").trim();
      const next = safeNext(f.get("next"));
      const role = token === "" ? null : await auth.roleOf(token);
      if (role === "worker" || role === "read") {
        logger.info({ role }, "crash browser sign-in");
        redirect(res, next, { "set-cookie": sessionCookie(req, token) });
      } else {
        // Never echo the token: the form comes back empty.
        const problem = role === "agent" ? "An agent token can only send reports; sign in with a read or worker token." : "Unknown token.";
        sendHtml(res, role === "agent" ? 403 : 401, loginPage(anon, next, problem));
      }
      return "ui_login";
    }
    if (p === "/ui/logout") {
      only("POST");
      if (!sameOrigin(req)) throw new ApiError(403, "forbidden", "a sign-out from another site's page is refused");
      redirect(res, "/ui/login", { "set-cookie": clearedCookie(req) });
      return "ui_logout";
    }

    const s = await session(req);
    if (!s) {
      if (method === "GET" && !p.endsWith(".json")) {
        redirect(res, hrefOf("/ui/login", { next: url.pathname + url.search }));
        return "ui_login_redirect";
      }
      throw new ApiError(401, "unauthorized", "sign in at /ui/login with a read or worker token");
    }
    const ctx: PageContext = { role: s.role, csrf: csrfOf(s.token), now: nowDate };

    /** A state-changing form: worker role, same origin, and the session's CSRF value (cookie sessions). */
    const changing = async (): Promise<URLSearchParams> => {
      if (s.role !== "worker") throw new ApiError(403, "forbidden", "a read token cannot change anything; sign in with a worker token");
      if (!sameOrigin(req)) throw new ApiError(403, "forbidden", "a form from another site's page is refused");
      const f = await form(req);
      if (!s.bearer && !csrfValid(s.token, f.get("csrf") ?? undefined)) throw new ApiError(403, "forbidden", "the form's CSRF value is missing or stale; reload the page");
      return f;
    };

    if (p === "/ui/groups") {
      only("GET");
      const q = GroupListQuerySchema.safeParse(Object.fromEntries(url.searchParams));
      if (!q.success) throw new ApiError(400, "bad_request", q.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
      const filters = browseFiltersOf(q.data, nowDate);
      const picked = selectPage(await browseGroups(k, db.kind, filters), q.data);
      const hashes = picked.rows.map((g) => g.signature_hash);
      const days = sparkDays(nowDate);
      const perDay = new Map<string, Map<string, number>>();
      for (const r of await browseDays(k, db.kind, filters, hashes, days[0]!)) {
        if (!perDay.has(r.signature_hash)) perDay.set(r.signature_hash, new Map());
        perDay.get(r.signature_hash)!.set(r.day, r.n);
      }
      const best = new Map<string, { analysis_id: string; doc: Partial<ResultDocument> | null }>();
      for (const [hash, r] of await bestResults(k, hashes)) best.set(hash, { analysis_id: r.analysis_id, doc: parseDoc(r.result_json) });
      sendHtml(res, 200, groupsPage(ctx, { q: q.data, ...picked, days, perDay, best, facets: await browseFacets(k) }));
      return "ui_groups";
    }
    let m = RESOLVE.exec(p);
    if (m) {
      only("POST");
      const hash = segment(m[1]!);
      const f = await changing();
      const resolved = f.get("resolved") === "true";
      if (!(await setResolved(k, hash, resolved ? deps.now() : null))) throw new ApiError(404, "not_found", `no crash group ${hash}`);
      logger.info({ signature_hash: hash, resolved, via: "ui" }, resolved ? "crash group resolved" : "crash group unresolved");
      redirect(res, `/ui/groups/${seg(hash)}`);
      return "ui_resolve";
    }
    m = GROUP.exec(p);
    if (m) {
      only("GET");
      const hash = segment(m[1]!);
      const group = await getGroup(k, hash);
      if (!group) throw new ApiError(404, "not_found", `no crash group ${hash}`);
      const bestRow = await getAnalysis(k, group.best_analysis_id);
      const occ = await listAnalyses(k, { signature: hash }, 50, cursorOf(url.searchParams.get("before")));
      sendHtml(
        res,
        200,
        groupPage(ctx, {
          group,
          best: bestRow ? { analysis_id: bestRow.analysis_id, doc: parseDoc(bestRow.result_json) } : null,
          occurrences: occ.items,
          older: occ.next ? Buffer.from(JSON.stringify(occ.next)).toString("base64url") : null,
        }),
      );
      return "ui_group";
    }
    m = REPROCESS.exec(p);
    if (m) {
      only("POST");
      const id = segment(m[1]!);
      const f = await changing();
      const a = await requeueAnalysis(k, id, deps.now());
      if (!a) throw new ApiError(404, "not_found", `no analysis ${id}`);
      deps.publisher.wake();
      logger.info({ analysis_id: id, reprocess_count: a.reprocess_count, via: "ui" }, "analysis queued again");
      redirect(res, safeNext(f.get("back") ?? `/ui/analyses/${seg(id)}`));
      return "ui_reprocess";
    }
    m = RESULT_JSON.exec(p) ?? ANALYSIS.exec(p);
    if (m) {
      only("GET");
      const id = segment(m[1]!);
      const a = await getAnalysis(k, id);
      if (!a) throw new ApiError(404, "not_found", `no analysis ${id}`);
      if (p.endsWith("/result.json")) {
        sendJson(res, 200, a.result_json ?? "null");
        return "ui_result_json";
      }
      sendHtml(res, 200, analysisPage(ctx, a, parseDoc(a.result_json)));
      return "ui_analysis";
    }
    if (p === "/ui/queue" || p === "/ui/queue.json") {
      only("GET");
      const counts = await queueCounts(k);
      if (p.endsWith(".json")) {
        sendJson(res, 200, JSON.stringify(counts));
        return "ui_queue_json";
      }
      const running = await listAnalyses(k, { status: "running" }, 20, null);
      sendHtml(res, 200, queuePage(ctx, counts, running.items));
      return "ui_queue";
    }
    throw new ApiError(404, "not_found", `no page ${p}`);
  }

  return async (req, res, url, p) => {
    try {
      return await handle(req, res, url, p);
    } catch (e: unknown) {
      const err = toError(e);
      if (res.headersSent) throw err;
      const status = err instanceof ApiError ? err.status : 503;
      if (!(err instanceof ApiError)) logger.error({ err }, "crash browser request failed");
      const message = err instanceof ApiError ? err.message : "the page could not be built; try again";
      const headers = err instanceof ApiError ? err.headers : undefined;
      if (p.endsWith(".json")) {
        sendJson(res, status, JSON.stringify({ error: err instanceof ApiError ? err.code : "unavailable", message }) + "\n", headers);
      } else {
        sendHtml(res, status, errorPage({ role: null, csrf: "", now: new Date() }, status, message), headers);
      }
      return "ui_error";
    }
  };
}
