/**
 * GET /ui/analyses/{id}: one analysis, summary first (what happened, in
 * which thread, at which line of the user's code, with the abort / assert /
 * exception / panic text), then the crash thread, the other threads
 * collapsed, a Go core's goroutines, the symbol report, registers and disassembly when the result
 * carries them, the processing timeline and the raw result document.
 */
import path from "node:path";
import type { AnalysisWithDump } from "../db/queries.js";
import type { ResultDocument } from "../../lib/results/document.js";
import type { Module } from "../../lib/result.js";
import { badge, frameTable, location, page, signalMeaning, threadTitle, time, type PageContext } from "./components.js";
import { crashThreadOf, reprocessForm } from "./groupPage.js";
import { hrefOf, html, seg, type HtmlValue, type SafeHtml } from "./html.js";

type Doc = Partial<ResultDocument> & { registers?: unknown; disassembly?: unknown };

const SENDER: Record<string, string> = {
  self: "raised by the process itself (abort, raise, kill on its own pid)",
  process: "sent by another process",
  kernel: "sent by the kernel (a fault)",
};

function summary(a: AnalysisWithDump, doc: Doc | null): SafeHtml {
  if (!doc) return html`<div class="summary"><p>No result yet: the analysis is <strong>${a.status}</strong>.</p></div>`;
  if (doc.status === "failed") {
    return html`<div class="summary"><p><strong>The analysis failed</strong>: <code>${doc.error?.code}</code></p><p class="callout">${doc.error?.message}</p></div>`;
  }
  const s = doc.signal ?? null;
  const thread = crashThreadOf(doc);
  const f = doc.crash_frame ?? null;
  const rt = doc.runtime ?? {};
  const texts: Array<[string, string | null | undefined]> = [
    ["abort / assert message", doc.abort_message],
    ["uncaught exception", rt.exception_type ? `${rt.exception_type}${rt.exception_message ? `: ${rt.exception_message}` : ""}` : rt.exception_message],
    ["panic", rt.panic_message],
  ];
  const who = [a.dump.pod, a.dump.namespace ? `in ${a.dump.namespace}` : null, a.dump.image ? `(${a.dump.image})` : null].filter(Boolean).join(" ");
  return html`<div class="summary" id="summary">
<p>${who ? html`<code>${who}</code> ` : null}received <strong>${s?.name ?? "no signal"}</strong>${s?.description ? html` — ${s.description}` : null}${
    s?.code ? html` (<code>${s.code}</code>${s.fault_address ? html` at <code>${s.fault_address}</code>` : null})` : null
  }${s?.sender ? html`, ${SENDER[s.sender.kind] ?? s.sender.kind}${s.sender.pid !== null ? ` (pid ${s.sender.pid})` : ""}` : null}.</p>
<p class="muted small">${signalMeaning(s?.name, null)}</p>
<p>${thread ? html`${threadTitle(thread)} crashed` : "The crash thread is unknown"}${
    f ? html` in <code class="fn">${f.function ?? "??"}</code>${location(f) ? html` at <code class="where">${location(f)}</code>` : null}` : null
  }.</p>
${texts.filter(([, t]) => t).map(([label, t]) => html`<p><strong>${label}</strong></p><p class="callout">${t}</p>`)}
${doc.warnings?.length ? html`<ul class="small">${doc.warnings.map((w) => html`<li>${w}</li>`)}</ul>` : null}
</div>`;
}

/** The command that uploads a missing module's symbols (docs/symbols.md): run where its unstripped build is. */
function symbolsAdd(m: Module): string {
  return `coresight-worker symbols add ${path.posix.basename(m.path)}`;
}

function symbolReport(doc: Doc): SafeHtml {
  const mods = doc.modules ?? [];
  const s = doc.symbolication;
  if (mods.length === 0 && !s) return html`<p class="muted">The result has no module inventory.</p>`;
  const noDebug = new Set(s?.without_debug_info_build_ids ?? []);
  return html`${s ? html`<p>${badge("found", `${s.found} found`)} ${badge("missing", `${s.missing} missing`)} ${badge("mismatched", `${s.mismatched} mismatched`)}</p>` : null}
<table class="stack modules"><thead><tr><th>module</th><th>build-id</th><th>status</th><th>source</th><th>symbols</th></tr></thead><tbody>${mods.map(
    (m) =>
      html`<tr><td data-label="module"><code>${m.path}</code>${m.file && m.file !== m.path ? html`<div class="small muted">${m.file}</div>` : null}</td><td class="mono small" data-label="build-id">${m.build_id}</td><td data-label="status">${badge(m.status)}</td><td data-label="source">${m.source}</td><td data-label="symbols">${m.symbols}</td></tr>${
        (m.status === "missing" || m.status === "mismatched" || (m.build_id !== null && noDebug.has(m.build_id))) && m.build_id
          ? html`<tr><td colspan="5" data-label="fix">${m.status === "found" ? "No debug info: upload its debug file" : "Upload its unstripped build"} (build-id <code>${m.build_id}</code>): <pre class="fix">${symbolsAdd(m)}</pre></td></tr>`
          : null
      }`,
  )}</tbody></table>`;
}

/** Registers (name → value) and disassembly (lines, `=>` at the faulting one), as the result carries them; any other shape is shown as JSON. */
function loose(v: unknown): SafeHtml {
  if (typeof v === "string") return html`<pre>${v}</pre>`;
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return html`<pre>${(v as string[]).join("\n")}</pre>`;
  if (v && typeof v === "object" && !Array.isArray(v)) {
    return html`<table class="registers"><tbody>${Object.entries(v as Record<string, unknown>).map(([k, x]) => html`<tr><td class="mono">${k}</td><td class="mono">${typeof x === "string" ? x : JSON.stringify(x)}</td></tr>`)}</tbody></table>`;
  }
  return html`<pre>${JSON.stringify(v, null, 2)}</pre>`;
}

function timeline(ctx: PageContext, a: AnalysisWithDump, doc: Doc | null): SafeHtml {
  const steps: Array<[string, HtmlValue]> = [
    ["crashed (agent's timestamp)", a.dump.timestamp ? time(a.dump.timestamp, ctx.now) : null],
    ["report received", time(a.dump.received_at, ctx.now)],
    ["analysis started", a.started_at ? time(a.started_at, ctx.now) : null],
    ["analyzed", doc?.analyzed_at ? time(doc.analyzed_at, ctx.now) : null],
    ["gdb ran", doc?.gdb ? `${Math.round(doc.gdb.duration_ms)} ms${doc.gdb.version ? `, gdb ${doc.gdb.version}` : ""}${doc.gdb.truncated ? ", output truncated" : ""}` : null],
    ["result stored", a.completed_at ? time(a.completed_at, ctx.now) : null],
    ["attempt", a.attempt !== null ? `${a.attempt}${a.worker_id ? ` by ${a.worker_id}` : ""}` : null],
    ["reprocessed", a.reprocess_count > 0 ? `${a.reprocess_count} time(s), last queued ${a.updated_at}` : null],
  ];
  return html`<dl class="facts timeline">${steps.filter(([, v]) => v !== null).map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>`;
}

/** A Go core's goroutines, each collapsed with its stack; the panicking one first and marked. Nothing for other programs. */
function goroutines(doc: Doc): SafeHtml | null {
  const gs = [...(doc.goroutines ?? [])].sort((a, b) => Number(b.panicking) - Number(a.panicking));
  if (gs.length === 0) return null;
  return html`<h2>Goroutines (${gs.length})</h2>${gs.map(
    (g) =>
      html`<details class="thread"><summary>goroutine ${g.goid}${g.panicking ? html` <strong>(panicking)</strong>` : null} — ${g.wait_reason ?? g.status}</summary>${frameTable(g.frames, null)}</details>`,
  )}`;
}

export function analysisPage(ctx: PageContext, a: AnalysisWithDump, doc: Doc | null): SafeHtml {
  const self = `/ui/analyses/${seg(a.analysis_id)}`;
  const thread = crashThreadOf(doc);
  const others = (doc?.threads ?? []).filter((t) => t !== thread);
  const body = html`<p class="small">${a.signature_hash ? html`<a href="${hrefOf(`/ui/groups/${seg(a.signature_hash)}`)}">← crash group</a>` : html`<a href="/ui/groups">← crash groups</a>`}</p>
<h1>Analysis <code>${a.analysis_id}</code> ${badge(a.status)}</h1>
<div class="actions">${reprocessForm(ctx, a.analysis_id, self)}<a href="${hrefOf(`${self}.json`)}">result JSON</a></div>
<h2>What happened</h2>${summary(a, doc)}
${
  doc && doc.status !== "failed"
    ? html`<h2>Crash thread</h2>${thread ? html`<p>${threadTitle(thread)}${thread.backtrace_stopped ? html` <span class="small muted">(${thread.backtrace_stopped})</span>` : null}</p>${frameTable(thread.frames, doc.crash_frame?.index ?? null)}` : html`<p class="muted">Unknown.</p>`}
<h2>Other threads (${others.length})</h2>${others.map((t) => html`<details class="thread"><summary>${threadTitle(t)}</summary>${frameTable(t.frames, null)}</details>`)}
${goroutines(doc)}
<h2>Symbols</h2>${symbolReport(doc)}
<h2>Registers and disassembly</h2>${
        doc.registers === undefined && doc.disassembly === undefined
          ? html`<p class="muted">Not in this result (result schema v1 carries neither).</p>`
          : html`${doc.registers !== undefined ? html`<h3>Registers</h3>${loose(doc.registers)}` : null}${doc.disassembly !== undefined ? html`<h3>Disassembly at the faulting instruction</h3>${loose(doc.disassembly)}` : null}`
      }`
    : null
}
<h2>Dump</h2><dl class="facts"><dt>pod</dt><dd><code>${a.dump.pod}</code></dd><dt>namespace</dt><dd>${a.dump.namespace}</dd><dt>node</dt><dd>${a.dump.node}</dd><dt>image</dt><dd><code>${a.dump.image}</code></dd>
<dt>file</dt><dd><code>${a.dump.file_url}</code></dd><dt>executable</dt><dd><code>${doc?.core?.executable ?? a.dump.executable_path}</code></dd>${
    doc?.core?.command_line ? html`<dt>command line</dt><dd><code>${doc.core.command_line}</code></dd>` : null
  }${doc?.core?.architecture ? html`<dt>architecture</dt><dd>${doc.core.architecture}</dd>` : null}<dt>size</dt><dd>${a.dump.file_size ?? doc?.core?.size ?? "–"}</dd></dl>
<h2>Timeline</h2>${timeline(ctx, a, doc)}
<h2>Raw result</h2><details class="raw"><summary>result document (${a.result_json === null ? "none yet" : `${a.result_json.length} bytes`})</summary><pre>${doc ? JSON.stringify(doc, null, 2) : ""}</pre></details>`;
  return page(ctx, `Analysis ${a.analysis_id}`, body);
}
