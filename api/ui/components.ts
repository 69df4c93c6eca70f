/**
 * Pieces every crash browser page uses: the page shell, times, badges, the
 * per-day sparkline, a thread's frame table. All output goes through `html`.
 */
import type { Frame, Thread } from "../../lib/result.js";
import { html, type HtmlValue, type SafeHtml } from "./html.js";

export interface PageContext {
  /** The session's role, null on the login page. */
  role: "worker" | "read" | null;
  /** The session's CSRF value for POST forms. */
  csrf: string;
  now: Date;
}

export function page(ctx: PageContext, title: string, body: SafeHtml, opts: { head?: SafeHtml } = {}): SafeHtml {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark">
<title>${title} · CoreSight</title><link rel="stylesheet" href="/ui/static/app.css"><link rel="icon" href="data:,">${opts.head}</head>
<body><header><nav><a class="brand" href="/ui/groups">CoreSight</a>${
    ctx.role
      ? html`<a href="/ui/groups">Crash groups</a><a href="/ui/queue">Queue</a><span class="muted small">${ctx.role} token</span><form class="inline" method="post" action="/ui/logout">${csrfField(ctx)}<button type="submit">Sign out</button></form>`
      : null
  }</nav></header>
<main>${body}</main></body></html>
`;
}

export function csrfField(ctx: PageContext): SafeHtml {
  return html`<input type="hidden" name="csrf" value="${ctx.csrf}">`;
}

/** `2025-12-12 15:30 UTC` with a relative hint; the machine-readable time in the element. */
export function time(iso: string | null | undefined, now: Date): SafeHtml {
  if (!iso) return html`<span class="muted">–</span>`;
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return html`${iso}`;
  const shown = new Date(t).toISOString().slice(0, 16).replace("T", " ") + " UTC";
  return html`<time datetime="${new Date(t).toISOString()}" title="${iso}">${shown}</time> <span class="muted small">${ago(now.getTime() - t)}</span>`;
}

function ago(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 0) return "";
  if (s < 90) return `${s}s ago`;
  if (s < 5400) return `${Math.round(s / 60)}m ago`;
  if (s < 129600) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function badge(kind: string, text: string = kind): SafeHtml {
  return html`<span class="badge ${kind}">${text}</span>`;
}

/** Inline SVG bars, one per day (oldest first); presentation only through the stylesheet. */
export function sparkline(counts: readonly number[], days: readonly string[]): SafeHtml {
  const w = 5;
  const h = 20;
  const max = Math.max(1, ...counts);
  const bars = counts.map((n, i) => {
    const bh = n === 0 ? 0.5 : Math.max(2, Math.round((n / max) * h));
    return html`<rect x="${i * w}" y="${h - bh}" width="${w - 1}" height="${bh}"><title>${days[i] ?? ""}: ${n}</title></rect>`;
  });
  const label = `occurrences per day, ${days[0] ?? ""} to ${days[days.length - 1] ?? ""}: ${counts.join(", ")}`;
  return html`<svg class="spark" width="${counts.length * w}" height="${h}" viewBox="0 0 ${counts.length * w} ${h}" role="img" aria-label="${label}">${bars}</svg>`;
}

/** What a signal means, for someone who does not have signal(7) in their head. */
const SIGNAL_MEANING: Record<string, string> = {
  SIGSEGV: "invalid memory access (null or wild pointer, use after free, stack overflow)",
  SIGABRT: "the process aborted itself (abort(), a failed assert, an uncaught C++ exception, a Rust panic) or was sent SIGABRT",
  SIGFPE: "arithmetic error (integer division by zero, overflow)",
  SIGBUS: "bad memory access (misaligned, or past the end of a mapped file)",
  SIGILL: "illegal instruction (__builtin_trap, ud2, corrupted code or the wrong CPU)",
  SIGTRAP: "trap or breakpoint instruction",
  SIGSYS: "bad system call (often a seccomp filter)",
  SIGKILL: "killed (OOM killer or kill -9)",
  SIGTERM: "asked to terminate",
  SIGQUIT: "quit with a core dump requested (kill -QUIT, Ctrl-\\)",
};

/** The fatal signals the list's filter offers. */
export const SIGNALS: readonly string[] = Object.keys(SIGNAL_MEANING);

export function signalMeaning(name: string | null | undefined, description?: string | null): string | null {
  return (name ? SIGNAL_MEANING[name] : undefined) ?? description ?? null;
}

/** `file:line` of a frame, or its library, or nothing. */
export function location(f: Pick<Frame, "file" | "line" | "library">): string | null {
  if (f.file) return f.line !== null ? `${f.file}:${f.line}` : f.file;
  return f.library;
}

export function frameTable(frames: readonly Frame[], crashIndex: number | null): SafeHtml {
  if (frames.length === 0) return html`<p class="muted">No frames.</p>`;
  return html`<table class="stack frames"><thead><tr><th>#</th><th>function</th><th>args</th><th>where</th><th>address</th></tr></thead><tbody>${frames.map(
    (f) =>
      html`<tr class="${f.index === crashIndex ? "crash" : ""}"><td class="num" data-label="#">${f.index}</td><td data-label="function"><code class="fn">${f.signal_handler ? "<signal handler called>" : (f.function ?? "??")}</code>${f.inline ? html` <span class="muted small">inline</span>` : null}</td><td data-label="args"><code>${f.args ?? ""}</code></td><td data-label="where" class="mono">${location(f)}</td><td data-label="address" class="mono muted">${f.address}</td></tr>${
        f.locals && f.locals.length > 0
          ? html`<tr><td></td><td colspan="4"><details><summary class="small">locals</summary><pre>${f.locals.join("\n")}</pre></details></td></tr>`
          : null
      }`,
  )}</tbody></table>`;
}

export function threadTitle(t: Thread): HtmlValue {
  const top = t.frames.find((f) => !f.signal_handler);
  return html`Thread ${t.number}${t.name ? html` <code>${t.name}</code>` : null}${t.lwp !== null ? html` <span class="muted small">LWP ${t.lwp}</span>` : null}${
    top ? html` — <code>${top.function ?? "??"}</code>` : null
  } <span class="muted small">${t.frames.length} frames</span>`;
}
