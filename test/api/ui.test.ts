/**
 * The crash browser without a browser: the escaping helper and the pure
 * parts of the list (filters ↔ URL, state, sort, paging, sparkline), then
 * the pages over real HTTP from an in-process API on SQLite and PostgreSQL,
 * with real analyses of the fixture cores: auth and the login cookie, CSRF,
 * the CSP, hostile names escaped, and the agent's POST / still ingesting.
 */
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { startApiService, type ApiService } from "../../api/service.js";
import { escapeHtml, hrefOf, html, raw, SafeHtml } from "../../api/ui/html.js";
import { GroupListQuerySchema, listParams, selectPage, sparkDays, PAGE_SIZE } from "../../api/ui/groupsPage.js";
import { CONTENT_SECURITY_POLICY, safeNext } from "../../api/ui/routes.js";
import { csrfOf } from "../../api/ui/session.js";
import { sparkline } from "../../api/ui/components.js";
import type { BrowseGroup } from "../../api/db/queries.js";
import { createLogger } from "../../lib/log.js";
import { AGENT_TOKEN, DB_KINDS, READ_TOKEN, WORKER_TOKEN, agentEvent, apiConfig, call, databases, postAsAgent, type Databases } from "./helpers.js";
import { storeOccurrence, type Stored } from "./uiData.js";

const quiet = createLogger({ level: "silent", stdout: false });
const XSS = "<img src=x onerror=alert(1)>";

describe("html: the one escaping template", () => {
  it("escapes every interpolated string, in text and in quoted attributes", () => {
    const v = `"><script>alert('x')</script>&\``;
    const out = html`<a title="${v}">${v}</a>`.text;
    expect(out).toBe(`<a title="&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&#96;">&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&#96;</a>`);
    expect(out).not.toContain("<script");
  });
  it("passes nested templates and raw() through once, escapes arrays element by element, drops null/undefined/booleans", () => {
    const inner = html`<b>${XSS}</b>`;
    expect(html`<p>${inner}</p>`.text).toBe("<p><b>&lt;img src=x onerror=alert(1)&gt;</b></p>");
    expect(html`${["<i>", html`<i>`, 3]}`.text).toBe("&lt;i&gt;<i>3");
    expect(html`[${null}${undefined}${false}${true}]`.text).toBe("[]");
    expect(html`${raw("<hr>")}`.text).toBe("<hr>");
    expect(html`${0}`.text).toBe("0");
    expect(inner).toBeInstanceOf(SafeHtml);
  });
  it("does not treat a string that looks like markup, or an object with a text field, as safe", () => {
    const fake = { text: "<script>" } as unknown as string;
    expect(html`${fake}`.text).toBe("[object Object]");
    expect(escapeHtml("&amp;")).toBe("&amp;amp;");
  });
  it("hrefOf builds same-site links only, leaving empty params out", () => {
    expect(hrefOf("/ui/groups", { namespace: "a b&c", image: "", page: 2, signal: undefined })).toBe("/ui/groups?namespace=a+b%26c&page=2");
    expect(() => hrefOf("//evil.example/x")).toThrow();
    expect(() => hrefOf("javascript:alert(1)")).toThrow();
    expect(html`<a href="${hrefOf("/ui/groups", { a: "1", b: "2" })}">`.text).toBe('<a href="/ui/groups?a=1&amp;b=2">');
  });
  it("safeNext keeps same-site paths and replaces everything else", () => {
    expect(safeNext("/ui/groups?x=1")).toBe("/ui/groups?x=1");
    for (const bad of ["//evil.example", "https://evil.example", "/\\evil", "javascript:x", "", null, "/ui\n"]) expect(safeNext(bad)).toBe("/ui/groups");
  });
});

describe("group list: filters in the URL, state, sort, paging", () => {
  const parse = (qs: string) => GroupListQuerySchema.parse(Object.fromEntries(new URLSearchParams(qs)));
  it("a query string round-trips through the schema and back, defaults left out", () => {
    const qs = "namespace=prod&image=registry%2Fapp%3A1.0&signal=SIGSEGV&status=regressed&since=7d&sort=count&page=3";
    const q = parse(qs);
    expect(new URLSearchParams(hrefOf("/x", listParams(q)).split("?")[1]).toString()).toBe(new URLSearchParams(qs).toString());
    expect(hrefOf("/ui/groups", listParams(parse("namespace=&sort=last_seen&page=1")))).toBe("/ui/groups");
    expect(() => parse("status=bogus")).toThrow();
    expect(() => parse("page=0")).toThrow();
  });
  const g = (hash: string, count: number, last: string, resolved: string | null = null): BrowseGroup => ({
    signature_hash: hash,
    signature_text: hash,
    frames: [hash],
    resolved_at: resolved,
    total: count,
    total_last_seen: last,
    count,
    first_seen: "2026-01-01T00:00:00.000Z",
    last_seen: last,
    pods: 1,
    namespaces: 1,
    images: 1,
  });
  it("states come from the unfiltered facts; status filters, both sorts and pages apply in that order", () => {
    const groups = [g("a", 1, "2026-01-03"), g("b", 5, "2026-01-02"), g("c", 2, "2026-01-04", "2026-01-05"), g("d", 3, "2026-01-06", "2026-01-05")];
    expect(selectPage(groups, parse("")).rows.map((r) => [r.signature_hash, r.state])).toEqual([
      ["d", "regressed"],
      ["c", "resolved"],
      ["a", "new"],
      ["b", "ongoing"],
    ]);
    expect(selectPage(groups, parse("sort=count")).rows.map((r) => r.signature_hash)).toEqual(["b", "d", "c", "a"]);
    expect(selectPage(groups, parse("status=open")).rows.map((r) => r.signature_hash)).toEqual(["d", "a", "b"]);
    expect(selectPage(groups, parse("status=resolved")).rows.map((r) => r.signature_hash)).toEqual(["c"]);
    const many = Array.from({ length: PAGE_SIZE + 3 }, (_, i) => g(`h${String(i).padStart(3, "0")}`, 1, `2026-02-${String(1 + (i % 27)).padStart(2, "0")}`));
    const p2 = selectPage(many, parse("page=2"));
    expect([p2.rows.length, p2.total, p2.pages]).toEqual([3, PAGE_SIZE + 3, 2]);
  });
  it("the sparkline is one bar per day, labelled, with no style attribute", () => {
    const days = sparkDays(new Date("2026-03-14T12:00:00Z"));
    expect(days).toHaveLength(14);
    expect([days[0], days[13]]).toEqual(["2026-03-01", "2026-03-14"]);
    const svg = sparkline(
      days.map((_, i) => i % 3),
      days,
    ).text;
    expect(svg.match(/<rect /g)).toHaveLength(14);
    expect(svg).toContain('aria-label="occurrences per day, 2026-03-01 to 2026-03-14: 0, 1, 2');
    expect(svg).not.toContain("style=");
  });
});

describe.each(DB_KINDS)("crash browser over HTTP on %s", (kind) => {
  let dbs: Databases;
  let api: ApiService;
  const stored: Stored[] = [];

  beforeAll(async () => {
    dbs = await databases(kind);
    api = await startApiService(apiConfig(await dbs.fresh("ui")), { logger: quiet });
    stored.push(await storeOccurrence(api.url, "null-deref", { n: 1, namespace: "prod" }));
    stored.push(await storeOccurrence(api.url, "null-deref", { n: 2, namespace: "staging", image: "registry/null-deref:2.0" }));
    stored.push(await storeOccurrence(api.url, "abort-assert", { n: 1, namespace: "prod" }));
    stored.push(await storeOccurrence(api.url, "stripped", { n: 1, namespace: "prod" }));
    stored.push(
      await storeOccurrence(api.url, "div-zero", {
        n: 1,
        pod: XSS,
        mutate: (r) => {
          const crash = r.threads.find((t) => t.number === r.crash_thread)!;
          const f = crash.frames.find((x) => x.index === r.crash_frame!.index)!;
          f.function = XSS;
          f.args = `p=<script>alert(2)</script>`;
          return { ...r, crash_frame: { ...r.crash_frame!, function: XSS }, signature: { ...r.signature!, hash: "ffffeeeeddddcccc", frames: [XSS] } };
        },
      }),
    );
  });
  afterAll(async () => {
    await api?.stop();
    await dbs?.stop();
  });

  const get = (p: string, headers: Record<string, string> = {}) => fetch(api.url + p, { headers, redirect: "manual" });
  const asReader = { authorization: `Bearer ${READ_TOKEN}` };

  it("the agent's POST to / still ingests; GET / leads to the crash browser, a PUT / is 405 naming GET and POST", async () => {
    const ev = agentEvent({ id: "coredog-1765567205-root", fileUrl: "http://127.0.0.1:9/core.root.1" });
    const r = await postAsAgent(api.url, ev);
    expect(r.status).toBe(202);
    expect(r.json.status).toBe("queued");
    const root = await get("/");
    expect(root.status).toBe(303);
    expect(root.headers.get("location")).toBe("/ui/groups");
    const put = await call(api.url, "PUT", "/", { token: AGENT_TOKEN, body: {} });
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")).toBe("GET,POST");
  });

  it("without a session a page redirects to the login form, keeping where it was going; JSON answers 401", async () => {
    const r = await get("/ui/groups?namespace=prod");
    expect(r.status).toBe(303);
    expect(r.headers.get("location")).toBe("/ui/login?next=%2Fui%2Fgroups%3Fnamespace%3Dprod");
    expect((await get("/ui/queue.json")).status).toBe(401);
    expect((await get("/ui/groups", { authorization: `Bearer ${AGENT_TOKEN}` })).status).toBe(303);
    const login = await get("/ui/login?next=%2Fui%2Fqueue");
    expect(login.status).toBe(200);
    expect(await login.text()).toContain('name="next" value="/ui/queue"');
  });

  it("login sets an HttpOnly SameSite=Strict cookie for a read token, refuses an unknown or agent token without echoing it", async () => {
    const form = (token: string, headers: Record<string, string> = {}) =>
      fetch(api.url + "/ui/login", {
        method: "POST",
        redirect: "manual",
        headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
        body: new URLSearchParams({ token, next: "/ui/queue" }),
      });
    const ok = await form(READ_TOKEN);
    expect(ok.status).toBe(303);
    expect(ok.headers.get("location")).toBe("/ui/queue");
    const cookie = ok.headers.get("set-cookie")!;
    expect(cookie).toMatch(/^coresight_ui=[^;]+; HttpOnly; SameSite=Strict; Path=\/; Max-Age=43200$/);
    const page = await get("/ui/queue", { cookie: cookie.split(";")[0]! });
    expect(page.status).toBe(200);
    expect(await page.text()).not.toContain(READ_TOKEN);
    const bad = await form("not-a-token-Zq9");
    expect(bad.status).toBe(401);
    expect(bad.headers.get("set-cookie")).toBeNull();
    expect(await bad.text()).not.toContain("not-a-token-Zq9");
    const agent = await form(AGENT_TOKEN);
    expect(agent.status).toBe(403);
    expect(await agent.text()).not.toContain(AGENT_TOKEN);
    expect((await form(READ_TOKEN, { origin: "http://evil.example" })).status).toBe(403);
  });

  it("every page carries the CSP, and a hostile function name, args and pod are text on the list, group and analysis pages", async () => {
    const list = await get("/ui/groups", asReader);
    expect(list.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY);
    expect(CONTENT_SECURITY_POLICY).toContain("script-src 'self'");
    expect(CONTENT_SECURITY_POLICY).not.toContain("unsafe-inline");
    const xss = stored[4]!;
    for (const p of ["/ui/groups", "/ui/groups/ffffeeeeddddcccc", `/ui/analyses/${xss.analysisId}`]) {
      const text = await (await get(p, asReader)).text();
      expect(text).toContain("&lt;img src=x onerror=alert(1)&gt;");
      expect(text).not.toContain("<img");
      expect(text).not.toContain("<script>alert");
    }
  });

  it("the list shows each stored crash with its file:line; filters narrow it and the form reproduces the URL", async () => {
    const text = await (await get("/ui/groups", asReader)).text();
    for (const s of stored.slice(0, 3)) expect(text).toContain(`${s.result.crash_frame!.file}:${s.result.crash_frame!.line}`);
    expect(text).toContain("4 groups");
    const staging = await (await get("/ui/groups?namespace=staging", asReader)).text();
    expect(staging).toContain("1 group<");
    expect(staging).toContain('<option value="staging" selected>');
    const segv = await (await get("/ui/groups?signal=SIGABRT", asReader)).text();
    expect(segv).toContain("1 group<");
    expect(segv).toContain("abort-assert.c");
    expect((await get("/ui/groups?status=nope", asReader)).status).toBe(400);
  });

  it("the analysis page of the stripped core names the build-id without debug info and its symbols add command", async () => {
    const s = stored[3]!;
    const text = await (await get(`/ui/analyses/${s.analysisId}`, asReader)).text();
    const missing = s.result.symbolication?.missing_build_ids ?? [];
    const noDebug = s.result.symbolication?.without_debug_info_build_ids ?? [];
    expect(missing.length + noDebug.length).toBeGreaterThan(0);
    expect(text).toContain([...missing, ...noDebug][0]!);
    expect(text).toContain("coresight-worker symbols add stripped");
  });

  it("resolve needs a worker session and the session's CSRF value; a read token, a missing value or another origin are refused", async () => {
    const hash = stored[2]!.result.signature!.hash;
    const loginAs = async (token: string) => {
      const r = await fetch(api.url + "/ui/login", { method: "POST", redirect: "manual", body: new URLSearchParams({ token, next: "/ui/groups" }) });
      return r.headers.get("set-cookie")!.split(";")[0]!;
    };
    const worker = await loginAs(WORKER_TOKEN);
    const reader = await loginAs(READ_TOKEN);
    const resolve = (cookie: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
      fetch(`${api.url}/ui/groups/${hash}/resolve`, { method: "POST", redirect: "manual", headers: { cookie, ...headers }, body: new URLSearchParams(body) });
    expect((await resolve(reader, { resolved: "true", csrf: csrfOf(READ_TOKEN) })).status).toBe(403);
    expect((await resolve(worker, { resolved: "true" })).status).toBe(403);
    expect((await resolve(worker, { resolved: "true", csrf: csrfOf(READ_TOKEN) })).status).toBe(403);
    expect((await resolve(worker, { resolved: "true", csrf: csrfOf(WORKER_TOKEN) }, { origin: "http://evil.example" })).status).toBe(403);
    const page = await (await get(`/ui/groups/${hash}`, { cookie: worker })).text();
    expect(page).toContain(`name="csrf" value="${csrfOf(WORKER_TOKEN)}"`);
    const ok = await resolve(worker, { resolved: "true", csrf: csrfOf(WORKER_TOKEN) }, { origin: api.url });
    expect(ok.status).toBe(303);
    expect(ok.headers.get("location")).toBe(`/ui/groups/${hash}`);
    const g = await call(api.url, "GET", `/api/v1/groups/${hash}`, { token: READ_TOKEN });
    expect(g.json.state).toBe("resolved");
    expect(await (await get("/ui/groups?status=resolved", asReader)).text()).toContain("1 group<");
  });

  it("reprocess from the page queues the analysis again; the queue page counts it", async () => {
    const s = stored[0]!;
    const r = await fetch(`${api.url}/ui/analyses/${s.analysisId}/reprocess`, {
      method: "POST",
      redirect: "manual",
      headers: { authorization: `Bearer ${WORKER_TOKEN}` },
      body: new URLSearchParams({ back: "//evil.example" }),
    });
    expect(r.status).toBe(303);
    expect(r.headers.get("location")).toBe("/ui/groups");
    const a = await call(api.url, "GET", `/api/v1/analyses/${s.analysisId}`, { token: READ_TOKEN });
    expect([a.json.status, a.json.reprocess_count]).toEqual(["queued", 1]);
    const counts = (await call(api.url, "GET", "/ui/queue.json", { token: READ_TOKEN })).json;
    expect(counts).toEqual({ queued: 2, running: 0, completed: 4, failed: 0, unpublished: expect.any(Number) });
  });

  it("the analysis page of a Go core lists its goroutines, the panicking one first and marked", async () => {
    const s = await storeOccurrence(api.url, "go-nil-deref", { n: 1, namespace: "prod" });
    const text = await (await get(`/ui/analyses/${s.analysisId}`, asReader)).text();
    expect(text).toContain("<h2>Goroutines (7)</h2>");
    const section = text.slice(text.indexOf("<h2>Goroutines"));
    expect(section).toMatch(/^<h2>Goroutines \(7\)<\/h2><details class="thread"><summary>goroutine 1 <strong>\(panicking\)<\/strong> — running<\/summary>/);
    expect(section.match(/— chan receive<\/summary>/g)).toHaveLength(2);
    expect(section).toContain("main.worker");
  });
});
