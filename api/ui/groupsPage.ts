/**
 * GET /ui/groups: one row per crash group. Every filter, the sort and the
 * page live in the query string, so a view is a link; the filter form is a
 * plain GET form that produces the same URL.
 */
import * as z from "zod";
import type { BrowseFilters, BrowseGroup } from "../db/queries.js";
import { groupState, type GroupState } from "../groups.js";
import type { ResultDocument } from "../../lib/results/document.js";
import { badge, location, page, signalMeaning, SIGNALS, sparkline, time, type PageContext } from "./components.js";
import { hrefOf, html, seg, type SafeHtml } from "./html.js";

export const PAGE_SIZE = 25;
export const SPARK_DAYS = 14;
const SINCE = { "1h": 3600e3, "24h": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3 } as const;
const STATES = ["open", "new", "ongoing", "regressed", "resolved"] as const;

const optional = z.preprocess((v) => (v === "" ? undefined : v), z.string().max(500).optional());

export const GroupListQuerySchema = z.object({
  namespace: optional,
  image: optional,
  signal: optional,
  status: z.preprocess((v) => (v === "" ? undefined : v), z.enum(STATES).optional()),
  since: z.preprocess((v) => (v === "" ? undefined : v), z.enum(["1h", "24h", "7d", "30d"]).optional()),
  sort: z.preprocess((v) => (v === "" ? undefined : v), z.enum(["last_seen", "count"]).default("last_seen")),
  page: z.preprocess((v) => (v === "" ? undefined : v), z.coerce.number().int().min(1).max(100000).default(1)),
});
export type GroupListQuery = z.infer<typeof GroupListQuerySchema>;

/** The query string of a list view; defaults are left out so equal views have equal URLs. */
export function listParams(q: GroupListQuery, change: Partial<GroupListQuery> = {}): Record<string, string | number | undefined> {
  const v = { ...q, ...change };
  return {
    namespace: v.namespace,
    image: v.image,
    signal: v.signal,
    status: v.status,
    since: v.since,
    sort: v.sort === "last_seen" ? undefined : v.sort,
    page: v.page === 1 ? undefined : v.page,
  };
}

export function browseFiltersOf(q: GroupListQuery, now: Date): BrowseFilters {
  return {
    namespace: q.namespace,
    image: q.image,
    signal: q.signal,
    since: q.since ? new Date(now.getTime() - SINCE[q.since]).toISOString() : undefined,
  };
}

function matchesState(state: GroupState, want: GroupListQuery["status"]): boolean {
  if (want === undefined) return true;
  if (want === "open") return state !== "resolved";
  return state === want;
}

/** State filter, sort, page: the part of the list decided in memory (states are derived, api/groups.ts). */
export function selectPage(groups: BrowseGroup[], q: GroupListQuery): { rows: Array<BrowseGroup & { state: GroupState }>; total: number; pages: number } {
  const withState = groups
    .map((g) => ({ ...g, state: groupState({ count: g.total, last_seen: g.total_last_seen, resolved_at: g.resolved_at }) }))
    .filter((g) => matchesState(g.state, q.status));
  withState.sort((a, b) =>
    q.sort === "count"
      ? b.count - a.count || (a.last_seen < b.last_seen ? 1 : a.last_seen > b.last_seen ? -1 : 0) || (a.signature_hash < b.signature_hash ? -1 : 1)
      : (a.last_seen < b.last_seen ? 1 : a.last_seen > b.last_seen ? -1 : 0) || (a.signature_hash < b.signature_hash ? -1 : 1),
  );
  const pages = Math.max(1, Math.ceil(withState.length / PAGE_SIZE));
  return { rows: withState.slice((q.page - 1) * PAGE_SIZE, q.page * PAGE_SIZE), total: withState.length, pages };
}

/** The UTC days of the sparkline, oldest first, ending today. */
export function sparkDays(now: Date): string[] {
  const out: string[] = [];
  for (let i = SPARK_DAYS - 1; i >= 0; i--) out.push(new Date(now.getTime() - i * 86400e3).toISOString().slice(0, 10));
  return out;
}

export interface GroupListData {
  q: GroupListQuery;
  rows: Array<BrowseGroup & { state: GroupState }>;
  total: number;
  pages: number;
  days: string[];
  perDay: Map<string, Map<string, number>>;
  best: Map<string, { analysis_id: string; doc: Partial<ResultDocument> | null }>;
  facets: { namespaces: string[]; images: string[] };
}

function select(name: string, label: string, current: string | undefined, options: ReadonlyArray<string | [string, string]>, any = "any"): SafeHtml {
  const opts = options.map((o) => (typeof o === "string" ? ([o, o] as const) : o));
  if (current !== undefined && !opts.some(([v]) => v === current)) opts.push([current, current]);
  return html`<label>${label}<select name="${name}"><option value="">${any}</option>${opts.map(
    ([v, text]) => html`<option value="${v}"${v === current ? html` selected` : null}>${text}</option>`,
  )}</select></label>`;
}

export function groupsPage(ctx: PageContext, d: GroupListData): SafeHtml {
  const { q } = d;
  const filters = html`<form class="filters" method="get" action="/ui/groups">
${select("namespace", "namespace", q.namespace, d.facets.namespaces)}
${select("image", "image", q.image, d.facets.images)}
${select("signal", "signal", q.signal, SIGNALS)}
${select("status", "status", q.status, [["open", "open (not resolved)"], "new", "ongoing", "regressed", "resolved"])}
${select(
  "since",
  "seen in",
  q.since,
  [
    ["1h", "last hour"],
    ["24h", "last 24 h"],
    ["7d", "last 7 days"],
    ["30d", "last 30 days"],
  ],
  "all time",
)}
<label>sort<select name="sort"><option value="last_seen"${q.sort === "last_seen" ? html` selected` : null}>last seen</option><option value="count"${q.sort === "count" ? html` selected` : null}>count</option></select></label>
<button class="primary" type="submit">Apply</button> <a href="/ui/groups">clear</a></form>`;
  const rows = d.rows.map((g) => {
    const best = d.best.get(g.signature_hash);
    const f = best?.doc?.crash_frame ?? null;
    const fn = f?.function ?? g.frames[0] ?? g.signature_text;
    const sig = best?.doc?.signal ?? null;
    const counts = d.days.map((day) => d.perDay.get(g.signature_hash)?.get(day) ?? 0);
    return html`<tr>
<td data-label="crash frame"><a class="group-link" href="${hrefOf(`/ui/groups/${seg(g.signature_hash)}`)}"><code class="fn">${fn}</code></a><div class="mono small muted">${f ? location(f) : null}</div></td>
<td data-label="signal"><strong>${sig?.name ?? "–"}</strong><div class="small muted">${signalMeaning(sig?.name, sig?.description)}</div></td>
<td class="num" data-label="count">${g.count}</td>
<td data-label="last ${String(d.days.length)} days">${sparkline(counts, d.days)}</td>
<td class="num small" data-label="pods / ns / images">${g.pods} / ${g.namespaces} / ${g.images}</td>
<td class="small" data-label="first seen">${time(g.first_seen, ctx.now)}</td>
<td class="small" data-label="last seen">${time(g.last_seen, ctx.now)}</td>
<td data-label="state">${badge(g.state)}</td></tr>`;
  });
  const pager = html`<div class="pager">${q.page > 1 ? html`<a rel="prev" href="${hrefOf("/ui/groups", listParams(q, { page: q.page - 1 }))}">← newer</a>` : null}<span class="muted">page ${q.page} of ${d.pages}</span>${
    q.page < d.pages ? html`<a rel="next" href="${hrefOf("/ui/groups", listParams(q, { page: q.page + 1 }))}">next →</a>` : null
  }</div>`;
  const body = html`<h1>Crash groups</h1>${filters}
<p class="muted" id="group-count">${d.total} ${d.total === 1 ? "group" : "groups"}</p>
${d.rows.length === 0 ? html`<p>No crash group matches these filters.</p>` : html`<table class="stack groups"><thead><tr><th>crash frame</th><th>signal</th><th class="num">count</th><th>last ${d.days.length} days</th><th class="num">pods / ns / images</th><th>first seen</th><th>last seen</th><th>state</th></tr></thead><tbody>${rows}</tbody></table>`}
${pager}`;
  return page(ctx, "Crash groups", body);
}
