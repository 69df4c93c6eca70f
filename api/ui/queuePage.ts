/**
 * GET /ui/queue: how many analyses are queued, running, completed, failed,
 * and reports not yet published to JetStream. /ui/static/queue.js refreshes
 * the numbers every 5 s from /ui/queue.json; without script, a meta refresh
 * in <noscript> reloads the page.
 */
import type { AnalysisWithDump } from "../db/queries.js";
import { page, time, type PageContext } from "./components.js";
import { hrefOf, html, seg, type SafeHtml } from "./html.js";

export type QueueCounts = { queued: number; running: number; completed: number; failed: number; unpublished: number };

/** Served as /ui/static/queue.js (CSP: scripts from 'self' only). */
export const QUEUE_SCRIPT = `"use strict";
(function () {
  var stamp = document.getElementById("updated");
  function tick() {
    fetch("/ui/queue.json", { credentials: "same-origin", headers: { accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(String(r.status)); return r.json(); })
      .then(function (c) {
        Object.keys(c).forEach(function (k) {
          var el = document.querySelector('[data-count="' + k + '"]');
          if (el) el.textContent = String(c[k]);
        });
        if (stamp) stamp.textContent = "updated " + new Date().toLocaleTimeString();
      })
      .catch(function () { if (stamp) stamp.textContent = "not updating (the API did not answer)"; });
  }
  setInterval(tick, 5000);
})();
`;

const LABELS: Array<[keyof QueueCounts, string]> = [
  ["queued", "queued"],
  ["running", "running"],
  ["completed", "completed"],
  ["failed", "failed"],
  ["unpublished", "not yet on JetStream"],
];

export function queuePage(ctx: PageContext, counts: QueueCounts, running: AnalysisWithDump[]): SafeHtml {
  const body = html`<h1>Queue</h1>
<div class="cards">${LABELS.map(([k, label]) => html`<div class="card"><div class="n" data-count="${k}">${counts[k]}</div><div class="muted">${label}</div></div>`)}</div>
<p class="small muted" id="updated">as of ${ctx.now.toISOString().slice(11, 19)} UTC</p>
<h2>Running now</h2>
${
  running.length === 0
    ? html`<p class="muted">Nothing is running.</p>`
    : html`<table class="stack"><thead><tr><th>analysis</th><th>pod</th><th>started</th><th>worker</th></tr></thead><tbody>${running.map(
        (a) =>
          html`<tr><td><a href="${hrefOf(`/ui/analyses/${seg(a.analysis_id)}`)}"><code>${a.analysis_id}</code></a></td><td><code>${a.dump.pod}</code></td><td>${time(a.started_at, ctx.now)}</td><td>${a.worker_id}</td></tr>`,
      )}</tbody></table>`
}`;
  return page(ctx, "Queue", body, { head: html`<script src="/ui/static/queue.js" defer></script><noscript><meta http-equiv="refresh" content="10"></noscript>` });
}
