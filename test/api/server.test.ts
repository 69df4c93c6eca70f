/**
 * The CoreSight API in-process against real databases (SQLite file and a
 * private PostgreSQL), over real HTTP: ingest and its auth, the worker's
 * result contract (and the worker's own http sink against it), groups, the
 * query API, reprocess, health and metrics. The outbox's NATS side is in
 * e2e.test.ts (with real worker processes).
 */
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { sql } from "kysely";
import { startApiService, type ApiService } from "../../api/service.js";
import { createLogger } from "../../lib/log.js";
import { createHttpSink } from "../../lib/results/http.js";
import { failedResult, SCHEMA_VERSION } from "../../lib/result.js";
import { AcceptedSchema, AnalysisDetailSchema, AnalysisPageSchema, GroupDetailSchema, GroupPageSchema, HealthSchema } from "../../api/schemas.js";
import { AGENT_TOKEN, DB_KINDS, READ_TOKEN, WORKER_TOKEN, agentEvent, apiConfig, call, databases, postAsAgent, type Databases } from "./helpers.js";

const quiet = createLogger({ level: "silent", stdout: false });

/** A completed result document as the worker PUTs it. */
function resultDoc(analysisId: string, opts: { hash?: string; quality?: number; pod?: string; status?: "completed" | "failed" } = {}) {
  const base = failedResult("internal_error", "x");
  const completed = opts.status !== "failed";
  return {
    analysis_id: analysisId,
    ...base,
    status: completed ? "completed" : "failed",
    ...(completed ? { error: undefined } : { error: { code: "not_a_core", message: "not a core" } }),
    signature: completed ? { text: "crash", hash: opts.hash ?? "0123456789abcdef", frames: ["crash"] } : null,
    quality: opts.quality ?? 1,
    schema_version: SCHEMA_VERSION,
    attempt: 1,
    worker_id: "test:1",
    event: null,
  };
}

describe.each(DB_KINDS)("CoreSight API on %s", (kind) => {
  let dbs: Databases;
  let api: ApiService;
  const url = () => api.url;

  beforeAll(async () => {
    dbs = await databases(kind);
    api = await startApiService(apiConfig(await dbs.fresh("server"), { API_MAX_BODY_BYTES: "4096" }), { logger: quiet });
  });
  afterAll(async () => {
    await api?.stop();
    await dbs?.stop();
  });

  const post = (body: unknown, opts: { token?: string; headers?: Record<string, string>; path?: string } = {}) => call(url(), "POST", opts.path ?? "/", { body, ...opts });

  describe("ingest", () => {
    it("accepts the agent's report with the header token, assigns a coredump_id, and answers the same ids for a repeat", async () => {
      const ev = agentEvent({ fileUrl: "http://dumps.example/core.a.1?X-Amz-Signature=s1" });
      const first = await post(ev, { token: AGENT_TOKEN });
      expect(first.status).toBe(202);
      expect(first.json).toEqual({ coredump_id: expect.any(Number), analysis_id: expect.stringMatching(/^a-[0-9a-f]{32}$/), status: "queued" });
      expect(first.json.coredump_id).toBeGreaterThan(0);
      expect(AcceptedSchema.parse(first.json)).toEqual(first.json);
      // Re-presigned URL, same dump: the same analysis, nothing new.
      const again = await post({ ...ev, data: { ...ev.data, file_url: "http://dumps.example/core.a.1?X-Amz-Signature=s2" } }, { token: AGENT_TOKEN });
      expect(again.status).toBe(200);
      expect(again.json).toEqual(first.json);
      const k = api.db.kysely;
      const rows = await k.selectFrom("analysis").select("analysis_id").where("analysis_id", "=", first.json.analysis_id).execute();
      expect(rows).toHaveLength(1);
      const outbox = await k.selectFrom("outbox").selectAll().where("analysis_id", "=", first.json.analysis_id).execute();
      expect(outbox).toHaveLength(1);
      expect(outbox[0]!.msg_id).toBe(first.json.analysis_id);
      // The queued event carries the assigned coredump_id and no token.
      const queued = JSON.parse(outbox[0]!.payload);
      expect(queued.data.coredump_id).toBe(first.json.coredump_id);
      expect(queued.token).toBeUndefined();
    });

    it("accepts the body token when the header is absent, at /api/v1/events and with application/cloudevents+json", async () => {
      const a = await post(agentEvent({ fileUrl: "http://dumps.example/core.b.1" }), { path: "/api/v1/events" });
      expect(a.status).toBe(202);
      const b = await post(agentEvent({ fileUrl: "http://dumps.example/core.b.2" }), { headers: { "content-type": "application/cloudevents+json; charset=utf-8" } });
      expect(b.status).toBe(202);
    });

    it("accepts binary mode (ce-* headers, data as the body)", async () => {
      const ev = agentEvent({ fileUrl: "http://dumps.example/core.bin.1" });
      const res = await post(ev.data, {
        token: AGENT_TOKEN,
        headers: { "ce-specversion": "1.0", "ce-type": ev.type, "ce-source": ev.source, "ce-id": "coredog-9-9", "ce-time": ev.time },
      });
      expect(res.status).toBe(202);
    });

    it("refuses missing, unknown and wrong-role tokens with 401/403 JSON that never echoes the token", async () => {
      const ev = agentEvent({ fileUrl: "http://dumps.example/core.c.1" });
      const { token: _t, ...noToken } = ev;
      const none = await post(noToken);
      expect(none.status).toBe(401);
      expect(none.json.error).toBe("unauthorized");
      const wrong = await post({ ...ev, token: "not-a-token-of-ours-123456" });
      expect(wrong.status).toBe(401);
      expect(JSON.stringify(wrong.json)).not.toContain("not-a-token-of-ours");
      const worker = await post(noToken, { token: WORKER_TOKEN });
      expect(worker.status).toBe(403);
      expect(JSON.stringify(worker.json)).not.toContain(WORKER_TOKEN);
      // A wrong header is not rescued by a right body token.
      expect((await post(ev, { token: "wrong-header-token-123456" })).status).toBe(401);
    });

    it("answers a clear 4xx naming what is wrong: type, not JSON, content type, size", async () => {
      const ev = agentEvent({ fileUrl: "http://dumps.example/core.d.1" });
      const badType = await post({ ...ev, type: "coredog.other" }, { token: AGENT_TOKEN });
      expect(badType.status).toBe(400);
      expect(badType.json.message).toMatch(/^type: /);
      const noUrl = await post({ ...ev, data: { ...ev.data, file_url: undefined } }, { token: AGENT_TOKEN });
      expect(noUrl.status).toBe(400);
      expect(noUrl.json.message).toContain("data.file_url");
      const notJson = await post(`{"token":"${AGENT_TOKEN}", oops`, { token: AGENT_TOKEN });
      expect(notJson.status).toBe(400);
      expect(notJson.json.error).toBe("invalid_json");
      expect(JSON.stringify(notJson.json)).not.toContain(AGENT_TOKEN);
      const text = await post("hello", { token: AGENT_TOKEN, headers: { "content-type": "text/plain" } });
      expect(text.status).toBe(415);
      expect(text.json.message).toContain("Content-Type");
      const big = await post({ ...ev, data: { ...ev.data, padding: "x".repeat(5000) } }, { token: AGENT_TOKEN });
      expect(big.status).toBe(413);
      expect(big.json.message).toContain("API_MAX_BODY_BYTES");
      // Without Content-Length (chunked), the limit holds while reading.
      const chunks = new ReadableStream({
        start(c) {
          for (let i = 0; i < 20; i++) c.enqueue(new TextEncoder().encode("x".repeat(10_000)));
          c.close();
        },
      });
      const chunked = await fetch(url(), {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${AGENT_TOKEN}` },
        body: chunks,
        duplex: "half",
      } as RequestInit);
      expect(chunked.status).toBe(413);
      await chunked.body?.cancel();
      // GET / is the crash browser now (issue 14; test/api/ui.test.ts); another method is still refused.
      const put = await call(url(), "PUT", "/");
      expect(put.status).toBe(405);
    });

    it("stores no token anywhere in the database", async () => {
      const k = api.db.kysely;
      const tables = ["coredump", "analysis", "outbox"] as const;
      for (const t of tables) {
        const rows = await sql<Record<string, unknown>>`select * from ${sql.table(t)}`.execute(k);
        expect(JSON.stringify(rows.rows)).not.toContain(AGENT_TOKEN);
      }
    });
  });

  describe("results (PUT /api/v1/analyses/{id})", () => {
    it("running → completed, 409 for a late running status, replace answers 200; worker token only", async () => {
      const { json } = await post(agentEvent({ fileUrl: "http://dumps.example/core.r.1" }), { token: AGENT_TOKEN });
      const id: string = json.analysis_id;
      const put = (body: unknown, token = WORKER_TOKEN) => call(url(), "PUT", `/api/v1/analyses/${id}`, { token, body });
      expect((await put({ analysis_id: id, status: "running", started_at: "2025-12-12T15:30:06.120Z", event: null })).status).toBe(200);
      expect((await call(url(), "GET", `/api/v1/analyses/${id}`, { token: READ_TOKEN })).json.status).toBe("running");
      expect((await put(resultDoc(id))).status).toBe(201);
      expect((await put({ analysis_id: id, status: "running" })).status).toBe(409);
      expect((await put(resultDoc(id, { quality: 0.5 }))).status).toBe(200);
      const got = await call(url(), "GET", `/api/v1/analyses/${id}`, { token: WORKER_TOKEN });
      expect(AnalysisDetailSchema.strict().safeParse(got.json).error).toBeUndefined();
      expect(got.json).toMatchObject({ analysis_id: id, status: "completed", quality: 0.5, signature: { hash: "0123456789abcdef" }, result: { status: "completed" } });
      expect((await put(resultDoc(id), AGENT_TOKEN)).status).toBe(403);
      expect((await put(resultDoc(id), READ_TOKEN)).status).toBe(403);
      expect((await call(url(), "PUT", `/api/v1/analyses/${id}`, { body: resultDoc(id) })).status).toBe(401);
      const mismatch = await put(resultDoc("a-other"));
      expect(mismatch.status).toBe(400);
      expect(mismatch.json.message).toMatch(/^analysis_id: /);
      const bad = await put({ ...resultDoc(id), quality: 7 });
      expect(bad.status).toBe(400);
      expect(bad.json.message).toMatch(/^quality: /);
    });

    it("the worker's http sink (lib/results/http.ts) stores against it unchanged, running status included", async () => {
      const { json } = await post(agentEvent({ fileUrl: "http://dumps.example/core.sink.1" }), { token: AGENT_TOKEN });
      const id: string = json.analysis_id;
      const sink = createHttpSink({ url: url(), token: WORKER_TOKEN, timeoutMs: 5000, putRunning: true });
      await sink.markRunning!(id, null, {});
      expect((await call(url(), "GET", `/api/v1/analyses/${id}`, { token: READ_TOKEN })).json.status).toBe("running");
      await sink.store(id, resultDoc(id, { status: "failed" }), { status: "failed" });
      await sink.store(id, resultDoc(id, { status: "failed" }), { status: "failed" });
      await sink.markRunning!(id, null, {}); // 409: fine for the sink
      const got = await call(url(), "GET", `/api/v1/analyses/${id}`, { token: READ_TOKEN });
      expect(got.json).toMatchObject({ status: "failed", error_code: "not_a_core" });
    });
  });

  describe("groups and the query API", () => {
    it("the same crash from 3 pods is one group: count 3, 3 pods; resolve, then a new occurrence regresses it", async () => {
      const hash = `grp${kind}0000000001`;
      const ids: string[] = [];
      for (const pod of ["web-1", "web-2", "web-3"]) {
        const { json } = await post(agentEvent({ fileUrl: `http://dumps.example/core.g.${pod}`, pod, node: `node-${pod}` }), { token: AGENT_TOKEN });
        ids.push(json.analysis_id);
      }
      for (const [i, id] of ids.entries()) {
        expect((await call(url(), "PUT", `/api/v1/analyses/${id}`, { token: WORKER_TOKEN, body: resultDoc(id, { hash, quality: [0.5, 0.9, 0.7][i] }) })).status).toBe(201);
      }
      const g = await call(url(), "GET", `/api/v1/groups/${hash}`, { token: READ_TOKEN });
      expect(g.status).toBe(200);
      expect(g.json).toMatchObject({
        signature_hash: hash,
        count: 3,
        state: "ongoing",
        distinct: { pods: 3, namespaces: 1, images: 1, nodes: 3 },
        pods: ["web-1", "web-2", "web-3"],
        latest_analysis_id: ids[2],
        best_analysis_id: ids[1],
        best_quality: 0.9,
      });
      expect(g.json.first_seen <= g.json.last_seen).toBe(true);
      // What the routes answer is what the OpenAPI document (generated from these schemas) says.
      expect(GroupDetailSchema.strict().safeParse(g.json).error).toBeUndefined();
      const list = await call(url(), "GET", "/api/v1/groups", { token: WORKER_TOKEN });
      expect(GroupPageSchema.safeParse(list.json).error).toBeUndefined();
      expect(list.json.items.map((x: { signature_hash: string }) => x.signature_hash)).toContain(hash);

      expect((await call(url(), "PATCH", `/api/v1/groups/${hash}`, { token: READ_TOKEN, body: { resolved: true } })).status).toBe(403);
      const resolved = await call(url(), "PATCH", `/api/v1/groups/${hash}`, { token: WORKER_TOKEN, body: { resolved: true } });
      expect(resolved.json).toMatchObject({ state: "resolved", regressed: false });
      expect(resolved.json.resolved_at).toEqual(expect.any(String));
      // A replaced result of an old occurrence is no regression.
      await call(url(), "PUT", `/api/v1/analyses/${ids[0]}`, { token: WORKER_TOKEN, body: resultDoc(ids[0]!, { hash }) });
      expect((await call(url(), "GET", `/api/v1/groups/${hash}`, { token: READ_TOKEN })).json.state).toBe("resolved");
      await new Promise((r) => setTimeout(r, 5));
      const { json: again } = await post(agentEvent({ fileUrl: "http://dumps.example/core.g.web-4", pod: "web-4" }), { token: AGENT_TOKEN });
      await call(url(), "PUT", `/api/v1/analyses/${again.analysis_id}`, { token: WORKER_TOKEN, body: resultDoc(again.analysis_id, { hash }) });
      const regressed = await call(url(), "GET", `/api/v1/groups/${hash}`, { token: READ_TOKEN });
      expect(regressed.json).toMatchObject({ state: "regressed", regressed: true, count: 4, distinct: { pods: 4 } });
      const unresolved = await call(url(), "PATCH", `/api/v1/groups/${hash}`, { token: WORKER_TOKEN, body: { resolved: false } });
      expect(unresolved.json).toMatchObject({ state: "ongoing", resolved_at: null });
      const badPatch = await call(url(), "PATCH", `/api/v1/groups/${hash}`, { token: WORKER_TOKEN, body: { resolved: "yes" } });
      expect(badPatch.status).toBe(400);
      expect(badPatch.json.message).toMatch(/^resolved: /);
      expect((await call(url(), "GET", "/api/v1/groups/nope", { token: READ_TOKEN })).status).toBe(404);
    });

    it("lists analyses with filters and cursor pagination; read endpoints need a worker or read token", async () => {
      const ns = `ns-${kind}`;
      const ids = new Set<string>();
      for (let i = 0; i < 5; i++) {
        const { json } = await post(agentEvent({ fileUrl: `http://dumps.example/core.l.${i}`, namespace: ns, pod: `pod-${i % 2}` }), { token: AGENT_TOKEN });
        ids.add(json.analysis_id);
      }
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: Awaited<ReturnType<typeof call>> = await call(url(), "GET", `/api/v1/analyses?namespace=${ns}&limit=2${cursor ? `&cursor=${cursor}` : ""}`, {
          token: READ_TOKEN,
        });
        expect(page.status).toBe(200);
        expect(AnalysisPageSchema.safeParse(page.json).error).toBeUndefined();
        expect(page.json.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.json.items.map((x: { analysis_id: string }) => x.analysis_id));
        cursor = page.json.next_cursor;
      } while (cursor);
      expect(new Set(seen)).toEqual(ids);
      expect(seen).toHaveLength(5);
      const pod0 = await call(url(), "GET", `/api/v1/analyses?namespace=${ns}&pod=pod-0&status=queued`, { token: WORKER_TOKEN });
      expect(pod0.json.items).toHaveLength(3);
      const future = await call(url(), "GET", `/api/v1/analyses?namespace=${ns}&since=2999-01-01T00:00:00Z`, { token: READ_TOKEN });
      expect(future.json.items).toHaveLength(0);
      const bad = await call(url(), "GET", "/api/v1/analyses?status=done", { token: READ_TOKEN });
      expect(bad.status).toBe(400);
      expect(bad.json.message).toMatch(/^status: /);
      expect((await call(url(), "GET", "/api/v1/analyses?cursor=zzz", { token: READ_TOKEN })).status).toBe(400);
      expect((await call(url(), "GET", "/api/v1/analyses")).status).toBe(401);
      expect((await call(url(), "GET", "/api/v1/analyses", { token: AGENT_TOKEN })).status).toBe(403);
      expect((await call(url(), "GET", "/api/v1/analyses/a-unknown", { token: READ_TOKEN })).status).toBe(404);
    });

    it("reprocess re-queues through the outbox with a new message id", async () => {
      const { json } = await post(agentEvent({ fileUrl: "http://dumps.example/core.rp.1" }), { token: AGENT_TOKEN });
      const id: string = json.analysis_id;
      await call(url(), "PUT", `/api/v1/analyses/${id}`, { token: WORKER_TOKEN, body: resultDoc(id) });
      expect((await call(url(), "POST", `/api/v1/analyses/${id}/reprocess`, { token: READ_TOKEN })).status).toBe(403);
      const rp = await call(url(), "POST", `/api/v1/analyses/${id}/reprocess`, { token: WORKER_TOKEN });
      expect(rp.status).toBe(202);
      expect(rp.json).toEqual({ coredump_id: json.coredump_id, analysis_id: id, status: "queued" });
      const outbox = await api.db.kysely.selectFrom("outbox").select(["msg_id", "payload"]).where("analysis_id", "=", id).orderBy("id").execute();
      expect(outbox.map((r) => r.msg_id)).toEqual([id, `${id}.reprocess-1`]);
      expect(outbox[1]!.payload).toBe(outbox[0]!.payload);
      // The running PUT of the new attempt is accepted again.
      expect((await call(url(), "PUT", `/api/v1/analyses/${id}`, { token: WORKER_TOKEN, body: { analysis_id: id, status: "running" } })).status).toBe(200);
      expect((await call(url(), "POST", "/api/v1/analyses/a-nope/reprocess", { token: WORKER_TOKEN })).status).toBe(404);
    });
  });

  describe("health and metrics", () => {
    it("health names NATS as the failing part while it is unreachable; /metrics serves prom-client text", async () => {
      const h = await call(url(), "GET", "/api/v1/health");
      expect(h.status).toBe(503);
      expect(HealthSchema.safeParse(h.json).error).toBeUndefined();
      expect(h.json).toMatchObject({ status: "unavailable", database: "ok" });
      expect(h.json.nats).not.toBe("ok");
      const m = await call(url(), "GET", "/metrics");
      expect(m.status).toBe(200);
      expect(m.json).toContain("coresight_api_reports_total");
      expect(m.json).toMatch(/coresight_api_outbox_pending \d+/);
    });
  });

  it("a request shaped like Go's net/http client (CoreDog) is accepted at the bare root URL", async () => {
    const res = await postAsAgent(url(), agentEvent({ fileUrl: "http://dumps.example/core.raw.1", id: "coredog-1765567205-4242" }));
    expect(res.status).toBe(202);
  });
});
