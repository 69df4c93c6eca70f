/**
 * From resolved modules to what the result says: `modules`, `symbolication`,
 * the quality adjustment, and module names on frames gdb could not name.
 * Pure functions.
 */
import { crashFrameOf } from "../gdb/crash.js";
import { signatureOf } from "../gdb/signature.js";
import type { Module, Result, Thread } from "../result.js";
import { moduleAt } from "./inventory.js";
import type { ResolvedModule } from "./resolve.js";

/** The result's `symbolication` summary (schema v1). */
export type Symbolication = NonNullable<Result["symbolication"]>;

/** The result's `modules` entries. */
export function toModules(resolved: ResolvedModule[]): Module[] {
  return resolved.map((m) => ({
    path: m.path,
    build_id: m.build_id,
    start: m.start,
    end: m.end,
    status: m.status,
    source: m.source,
    file: m.file,
    symbols: m.symbols,
    debug_file: m.debug?.file ?? null,
    debug_source: m.debug?.source ?? null,
  }));
}

export function symbolicationOf(resolved: ResolvedModule[]): Symbolication {
  const count = (s: ResolvedModule["status"]) => resolved.filter((m) => m.status === s).length;
  // An invalid module is not placed even when its build is uploaded: not a build-id to ask for.
  const ids = resolved.filter((m) => (m.status === "missing" || m.status === "mismatched") && m.build_id).map((m) => m.build_id!);
  const bare = resolved.filter((m) => m.status === "found" && m.symbols !== "dwarf" && m.build_id).map((m) => m.build_id!);
  return {
    found: count("found"),
    missing: count("missing"),
    mismatched: count("mismatched"),
    missing_build_ids: [...new Set(ids)],
    without_debug_info_build_ids: [...new Set(bare)],
  };
}

/**
 * Share of the crash thread's modules that were found, from the frames'
 * addresses; 1 when no frame maps to a known module (nothing to discount).
 */
export function crashModuleShare(threads: Thread[], crashThread: number | null, resolved: ResolvedModule[]): number {
  const t = threads.find((x) => x.number === crashThread) ?? threads[0];
  if (!t) return 1;
  const seen = new Map<string, boolean>();
  for (const f of t.frames) {
    if (!f.address) continue;
    const m = moduleAt(resolved, f.address);
    if (m) seen.set(`${m.path}@${m.start}`, m.status === "found");
  }
  if (seen.size === 0) return 1;
  return [...seen.values()].filter(Boolean).length / seen.size;
}
