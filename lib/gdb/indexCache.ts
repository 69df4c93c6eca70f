/**
 * gdb's index cache, kept across jobs: the DWARF name index gdb builds for a
 * library's debug info (libc6-dbg's libc, libstdc++'s) is written once and
 * read back by every later gdb run, instead of being rebuilt from the DWARF
 * each time. On this project's fixtures it takes a third off gdb's time
 * (bench/startup.ts, the warm rows).
 *
 * gdb names an index by build-id alone (`<dir>/<build-id>.gdb-index`), so a
 * shared directory would let one job's file steer another job's answer: an
 * image that carries a library with a forged build-id would write the index
 * every later job uses for the real library. So gdb never sees the shared
 * directory. Each run gets its own directory (`prepare`), holding hard links
 * to exactly the entries of this run's modules, each taken from the entry's
 * scope; what gdb wrote there is adopted afterwards (`adopt`) into the same
 * scopes, each by an atomic link that never replaces an entry:
 *
 *   <dir>/trusted/<build-id>.gdb-index        files from this machine, the
 *                                             symbol store, SYSROOT, debuginfod
 *   <dir>/layer-<digest>/<build-id>.gdb-index a file of an image layer: only
 *                                             jobs that use the same layer
 *                                             (content-addressed) share it
 *
 * The executable's own index is never kept. For a program whose DWARF names
 * its main function (Rust's DW_AT_main_subprogram), gdb learns that name only
 * when it reads the DWARF itself; from an index it falls back to the C
 * `main`, and the backtrace goes on past the program's main into the
 * runtime's start-up frames. With the executable always read in full, a
 * result is the same whether the cache was cold or warm (test/lib/gdb/
 * indexCache.test.ts runs every fixture both ways).
 *
 * Bounded: after each adopt, the least recently used entries (mtime, set on
 * every use) are removed until the whole cache fits `maxBytes`. A running
 * gdb keeps its hard links, so eviction never pulls an index from under it.
 * The cache is an optimisation only: any failure here leaves the run
 * without it, never fails an analysis.
 */
import fs from "node:fs/promises";
import path from "node:path";
import type { ResolvedModule } from "../symbols/resolve.js";

export interface IndexCacheOptions {
  /** GDB_INDEX_CACHE_DIR. */
  dir: string;
  /** GDB_INDEX_CACHE_MAX_BYTES: the whole cache's bound. */
  maxBytes: number;
}

/** One index this run may read and write: the module's build-id, in the scope its DWARF came from. */
export interface IndexEntry {
  buildId: string;
  scope: string;
}

const BUILD_ID = /^[0-9a-f]{8,128}$/;
const SCOPE = /^(trusted|layer-[0-9a-f]{64})$/;
const SUFFIX = ".gdb-index";

/**
 * The entries of a run's modules: every found module with a build-id but the
 * executable, scoped by where the file gdb reads its DWARF from (the separate
 * debug file when there is one) came from. An image file whose layer is not
 * known has no scope, so no entry.
 */
export function indexEntries(modules: readonly ResolvedModule[]): IndexEntry[] {
  const out = new Map<string, IndexEntry>();
  for (const m of modules) {
    if (m.executable || m.status !== "found" || !m.build_id || !BUILD_ID.test(m.build_id)) continue;
    const source = m.debug?.source ?? m.source;
    let scope = "trusted";
    if (source === "image") {
      const layer = m.debug ? m.image?.debug_layer : m.image?.layer;
      const hex = /^sha256:([0-9a-f]{64})$/.exec(layer ?? "")?.[1];
      if (!hex) continue;
      scope = `layer-${hex}`;
    } else if (source === "exe" || source === null) {
      continue; // the caller's own file (analyze --exe): its index is the caller's, not the fleet's
    }
    out.set(`${scope}/${m.build_id}`, { buildId: m.build_id, scope });
  }
  return [...out.values()];
}

export class GdbIndexCache {
  constructor(readonly opts: IndexCacheOptions) {}

  private entryFile(e: IndexEntry): string {
    if (!BUILD_ID.test(e.buildId) || !SCOPE.test(e.scope)) throw new Error(`bad index cache entry ${JSON.stringify(e)}`);
    return path.join(this.opts.dir, e.scope, e.buildId + SUFFIX);
  }

  /**
   * Creates `runDir` (which must not exist) with a hard link to each cached
   * entry of `entries`, marking those used. Returns the entries found.
   */
  async prepare(runDir: string, entries: readonly IndexEntry[]): Promise<number> {
    await fs.mkdir(runDir, { mode: 0o700 });
    let found = 0;
    const now = new Date();
    for (const e of entries) {
      const file = this.entryFile(e);
      try {
        await fs.link(file, path.join(runDir, e.buildId + SUFFIX));
        await fs.utimes(file, now, now).catch(() => undefined);
        found++;
      } catch (err: unknown) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT" || code === "EEXIST") continue; // not cached; or two scopes of one build-id, the first wins
        if (code !== "EXDEV") throw err;
        await fs.copyFile(file, path.join(runDir, e.buildId + SUFFIX));
        found++;
      }
    }
    return found;
  }

  /**
   * Takes what gdb wrote into `runDir` for `entries` into the cache (a file
   * of any other name, the executable's included, is left to be removed
   * with the run), then evicts down to maxBytes. Returns the entries added.
   */
  async adopt(runDir: string, entries: readonly IndexEntry[]): Promise<number> {
    let added = 0;
    for (const e of entries) {
      const written = path.join(runDir, e.buildId + SUFFIX);
      const file = this.entryFile(e);
      const st = await fs.lstat(written).catch(() => null);
      // A hard link we made has a second name (nlink > 1): it is the cached entry itself.
      if (!st?.isFile() || st.nlink > 1) continue;
      await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      try {
        await fs.link(written, file);
        added++;
      } catch (err: unknown) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EEXIST") continue; // another job was first: keep its entry
        if (code !== "EXDEV") throw err;
        const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
        await fs.copyFile(written, tmp);
        await fs.link(tmp, file).then(
          () => added++,
          (l: unknown) => ((l as NodeJS.ErrnoException).code === "EEXIST" ? undefined : Promise.reject(l)),
        );
        await fs.rm(tmp, { force: true });
      }
    }
    if (added > 0) await this.evict();
    return added;
  }

  /** Every entry, with its size and last use. */
  async entries(): Promise<Array<{ file: string; size: number; usedMs: number }>> {
    const out: Array<{ file: string; size: number; usedMs: number }> = [];
    const scopes = await fs.readdir(this.opts.dir).catch(() => [] as string[]);
    for (const scope of scopes.filter((s) => SCOPE.test(s))) {
      const names = await fs.readdir(path.join(this.opts.dir, scope)).catch(() => [] as string[]);
      for (const name of names.filter((n) => n.endsWith(SUFFIX))) {
        const file = path.join(this.opts.dir, scope, name);
        const st = await fs.stat(file).catch(() => null);
        if (st?.isFile()) out.push({ file, size: st.size, usedMs: st.mtimeMs });
      }
    }
    return out;
  }

  /** Removes the least recently used entries until the cache fits maxBytes. */
  async evict(): Promise<void> {
    const all = (await this.entries()).sort((a, b) => a.usedMs - b.usedMs);
    let total = all.reduce((n, e) => n + e.size, 0);
    for (const e of all) {
      if (total <= this.opts.maxBytes) break;
      await fs.rm(e.file, { force: true });
      total -= e.size;
    }
  }
}

/** One gdb run's view of the cache: the directory to give gdb, and what to do once it has exited. */
export interface IndexCacheRun {
  dir: string;
  /** Adopts what gdb wrote; never throws. */
  finish: () => Promise<void>;
}

/**
 * Sets up `runDir` for one gdb run on `modules`, or null (no cache
 * configured, no entry to share, or it could not be set up: the run goes on without one).
 */
export async function indexCacheRun(opts: IndexCacheOptions | null | undefined, modules: readonly ResolvedModule[], runDir: string): Promise<IndexCacheRun | null> {
  const entries = opts ? indexEntries(modules) : [];
  // Nothing this run could share (no resolution, only the executable has DWARF): no cache at all, so gdb
  // does not write indexes that would never be adopted.
  if (!opts || entries.length === 0) return null;
  const cache = new GdbIndexCache(opts);
  try {
    await cache.prepare(runDir, entries);
  } catch {
    return null;
  }
  return {
    dir: runDir,
    finish: () =>
      cache.adopt(runDir, entries).then(
        () => undefined,
        () => undefined,
      ),
  };
}
