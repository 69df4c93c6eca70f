/**
 * A small debuginfod client: `GET <url>/buildid/<id>/{executable,debuginfo}`
 * against each server in turn (the protocol elfutils and gdb speak).
 *
 * The worker fetches through its own size-bounded cache instead of leaving it
 * all to gdb's client: the cache outlives a job (gdb's per-job
 * DEBUGINFOD_CACHE_PATH would start cold every time), and it lets the report
 * say per module which server had which file. gdb's own client is opt-in
 * (SymbolsOptions.gdbDebuginfod), see docs/symbols.md.
 */
import { toError } from "../errors.js";
import type * as FetchToFile from "../storage/fetchToFile.js";
import type { StoreKind } from "./store.js";

/** Splits DEBUGINFOD_URLS (space-separated like elfutils; commas accepted too). */
export function parseDebuginfodUrls(raw: string | undefined | null): string[] {
  return (raw ?? "")
    .split(/[\s,]+/)
    .map((u) => u.trim().replace(/\/+$/, ""))
    .filter((u) => /^https?:\/\//i.test(u));
}

export interface DebuginfodFetchOptions {
  fetch?: typeof fetch;
  signal?: AbortSignal;
  /** Per-request timeout (headers and body). */
  timeoutMs?: number;
  /** A file larger than this is refused (the symbol cache's SYMBOL_CACHE_MAX_BYTES); default: no cap. */
  maxBytes?: number;
}

export interface DebuginfodOutcome {
  /** The server that had the file; null when none had it. */
  url: string | null;
  /** Servers that failed (network error, 5xx), as messages: a miss that is not a true "missing". */
  errors: string[];
}

/**
 * Downloads `<id>/<kind>` from the first server that has it into `dest`.
 * 404 (and other 4xx) means "not there"; errors are collected, not thrown,
 * so one broken server does not hide the others.
 */
export async function debuginfodFetch(urls: string[], buildId: string, kind: StoreKind, dest: string, opts: DebuginfodFetchOptions = {}): Promise<DebuginfodOutcome> {
  const maxBytes = opts.maxBytes ?? Number.MAX_SAFE_INTEGER;
  const errors: string[] = [];
  // The HTTP client loads with the first server to ask: an `analyze` without DEBUGINFOD_URLS never needs it.
  let fetchToFile: typeof FetchToFile.fetchToFile | null = null;
  for (const base of urls) {
    fetchToFile ??= (await import("../storage/fetchToFile.js")).fetchToFile;
    const url = `${base}/buildid/${buildId}/${kind}`;
    const signals = [AbortSignal.timeout(opts.timeoutMs ?? 120_000)];
    if (opts.signal) signals.push(opts.signal);
    try {
      const res = await fetchToFile(new URL(url), dest, {
        signal: AbortSignal.any(signals),
        maxBytes,
        tooLarge: (n) => new Error(`more than ${maxBytes} bytes (${n} so far), larger than the symbol cache (SYMBOL_CACHE_MAX_BYTES)`),
        ...(opts.fetch ? { fetch: opts.fetch } : {}),
      });
      if (res.status === 200) return { url: base, errors };
      if (res.status >= 500 || res.status === 429) errors.push(`${url}: HTTP ${res.status}`);
    } catch (e: unknown) {
      if (opts.signal?.aborted) throw e;
      errors.push(`${url}: ${toError(e).message}`);
    }
  }
  return { url: null, errors };
}
