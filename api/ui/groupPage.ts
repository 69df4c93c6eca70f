/**
 * GET /ui/groups/{hash}: one crash group: its signature frames, the best
 * analysis's crash thread, its occurrences, and (worker token) resolve /
 * unresolve and reprocess.
 */
import type { AnalysisWithDump, GroupDetail } from "../db/queries.js";
import { groupState } from "../groups.js";
import type { ResultDocument } from "../../lib/results/document.js";
import { badge, csrfField, frameTable, location, page, signalMeaning, time, type PageContext } from "./components.js";
import { hrefOf, html, seg, type SafeHtml } from "./html.js";

export interface GroupPageData {
  group: GroupDetail;
  best: { analysis_id: string; doc: Partial<ResultDocument> | null } | null;
  occurrences: AnalysisWithDump[];
  /** The `before` value of the next (older) page of occurrences, null on the last. */
  older: string | null;
}

/** A reprocess button for one analysis; only a worker token may reprocess. */
export function reprocessForm(ctx: PageContext, analysisId: string, back: string): SafeHtml | null {
  if (ctx.role !== "worker") return null;
  return html`<form class="inline" method="post" action="${hrefOf(`/ui/analyses/${seg(analysisId)}/reprocess`)}">${csrfField(ctx)}<input type="hidden" name="back" value="${back}"><button type="submit">Reprocess</button></form>`;
}

export function crashThreadOf(doc: Partial<ResultDocument> | null) {
  return doc?.threads?.find((t) => t.number === doc.crash_thread) ?? doc?.threads?.find((t) => t.crashed) ?? null;
}

function list(values: string[]): SafeHtml {
  return values.length === 0 ? html`<span class="muted">–</span>` : html`${values.map((v, i) => html`${i > 0 ? ", " : ""}<code>${v}</code>`)}`;
}

export function groupPage(ctx: PageContext, d: GroupPageData): SafeHtml {
  const g = d.group;
  const state = groupState(g);
  const doc = d.best?.doc ?? null;
  const f = doc?.crash_frame ?? null;
  const self = `/ui/groups/${seg(g.signature_hash)}`;
  const thread = crashThreadOf(doc);
  const actions =
    ctx.role === "worker"
      ? html`<div class="actions"><form class="inline" method="post" action="${hrefOf(`${self}/resolve`)}">${csrfField(ctx)}<input type="hidden" name="resolved" value="${g.resolved_at === null || state === "regressed" ? "true" : "false"}"><button type="submit" class="primary">${
          g.resolved_at === null || state === "regressed" ? "Mark resolved" : "Unresolve"
        }</button></form>${d.best ? reprocessForm(ctx, d.best.analysis_id, self) : null}</div>`
      : html`<p class="muted small">Resolving and reprocessing need a worker token.</p>`;
  const occurrences = d.occurrences.map(
    (a) => html`<tr><td data-label="analysis"><a class="analysis-link" href="${hrefOf(`/ui/analyses/${seg(a.analysis_id)}`)}"><code>${a.analysis_id}</code></a></td>
<td data-label="pod"><code>${a.dump.pod}</code><div class="small muted">${a.dump.namespace}</div></td><td data-label="node">${a.dump.node}</td><td data-label="image"><code>${a.dump.image}</code></td>
<td class="small" data-label="received">${time(a.dump.received_at, ctx.now)}</td><td data-label="status">${badge(a.status)}</td><td class="num" data-label="quality">${a.quality === null ? "–" : a.quality.toFixed(2)}</td><td>${reprocessForm(ctx, a.analysis_id, self)}</td></tr>`,
  );
  const body = html`<p class="small"><a href="/ui/groups">← crash groups</a></p>
<h1><code class="fn">${f?.function ?? g.frames[0] ?? g.signature_text}</code> ${badge(state)}</h1>
<p class="mono">${f ? location(f) : null}</p>
<dl class="facts"><dt>signal</dt><dd><strong>${doc?.signal?.name ?? "–"}</strong> <span class="muted">${signalMeaning(doc?.signal?.name, doc?.signal?.description)}</span></dd>
<dt>count</dt><dd>${g.count}</dd><dt>first seen</dt><dd>${time(g.first_seen, ctx.now)}</dd><dt>last seen</dt><dd>${time(g.last_seen, ctx.now)}</dd>
<dt>resolved</dt><dd>${g.resolved_at ? time(g.resolved_at, ctx.now) : "no"}</dd>
<dt>pods (${g.pods})</dt><dd>${list(g.pod_names)}</dd><dt>namespaces (${g.namespaces})</dt><dd>${list(g.namespace_names)}</dd>
<dt>images (${g.images})</dt><dd>${list(g.image_names)}</dd><dt>nodes (${g.nodes})</dt><dd>${list(g.node_names)}</dd>
<dt>signature</dt><dd class="mono small">${g.signature_hash}</dd></dl>
${actions}
<h2>Signature frames</h2><ol class="signature mono">${g.frames.map((fr) => html`<li>${fr}</li>`)}</ol>
<h2>Crash thread of the best analysis</h2>
${
  d.best
    ? html`<p class="small">From <a href="${hrefOf(`/ui/analyses/${seg(d.best.analysis_id)}`)}"><code>${d.best.analysis_id}</code></a> (symbol quality ${g.best_quality === null ? "–" : g.best_quality.toFixed(2)}).</p>${
        thread ? frameTable(thread.frames, f?.index ?? null) : html`<p class="muted">The result names no crash thread.</p>`
      }`
    : html`<p class="muted">No analysis.</p>`
}
<h2>Occurrences</h2>
<table class="stack occurrences"><thead><tr><th>analysis</th><th>pod</th><th>node</th><th>image</th><th>received</th><th>status</th><th class="num">quality</th><th></th></tr></thead><tbody>${occurrences}</tbody></table>
${d.older ? html`<div class="pager"><a rel="next" href="${hrefOf(self, { before: d.older })}">older occurrences →</a></div>` : null}`;
  return page(ctx, `Group ${g.signature_hash}`, body);
}
