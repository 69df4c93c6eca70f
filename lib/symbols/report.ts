/**
 * From resolved modules to what the result says: `modules`, `symbolication`,
 * the quality adjustment, and module names on frames gdb could not name.
 * Pure functions.
 */
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
    ...(m.image ? { image: m.image } : {}),
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

/**
 * What an operator can do about each module the analysis lacks, as result
 * warnings: the module, its build-id and the exact command that fixes it.
 * A file of another build found where the module should be (an --exe or a
 * sysroot of the wrong build) is said too: it was not used, never silently.
 */
export function symbolHints(resolved: ResolvedModule[]): string[] {
  const out: string[] = [];
  for (const m of resolved) {
    if (m.status === "found" || m.status === "invalid") continue;
    const id = m.build_id ? `build-id ${m.build_id}` : "no build-id in the core";
    const what = m.executable ? "executable" : "library";
    const fix = m.build_id
      ? `upload the build with that build-id: coresight-worker symbols add <file> (or the ${m.executable ? "executable with --exe" : "image's files with --sysroot"})`
      : m.executable
        ? "pass the executable with --exe"
        : "give the image's files with --sysroot";
    if (m.status === "mismatched") {
      const others = m.rejected.map((r) => `${r.file} (${r.source}, build-id ${r.build_id ?? "none"})`).join(", ");
      out.push(`${what} ${m.path} (${id}): only other builds were found, not used: ${others}; ${fix}`);
    } else {
      out.push(`${what} ${m.path} (${id}) not found${m.errors.length ? ` (${m.errors.slice(0, 2).join("; ")})` : ""}: ${fix}`);
    }
  }
  return out;
}
