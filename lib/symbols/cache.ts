/**
 * The local disk cache for symbol files fetched from remote sources (an S3
 * symbol store, debuginfod), bounded in size.
 *
 * Layout: `<dir>/<source>/<build-id>/<kind>`, e.g.
 * `<dir>/symbol_store/ab12…/executable`. Files are immutable per key (a
 * build-id names one build), so a hit needs no validation.
 *
 * Invariants:
 * - An entry appears atomically: it is written under `<dir>/.tmp/` and
 *   renamed into place, so a concurrent reader (another job, another worker
 *   process sharing the volume) never sees a half-written file.
 * - Recency is the file's mtime, set on every hit (atime is unreliable under
 *   `relatime`/`noatime`); eviction removes the least recently used entries
 *   until the total fits `maxBytes`, right after each insert.
 * - A miss ("the source does not have it") is remembered in memory for a
 *   minute, never on disk: a build uploaded later is found soon after.
 * - Eviction may remove a file a running job is using: jobs therefore
 *   hard-link cache files into their own directory (see tree.ts), which
 *   keeps the data alive until the job ends.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { toError } from "../errors.js";

export interface CacheEntry {
  key: string;
  file: string;
  size: number;
  usedMs: number;
}

/** Temp files older than this are leftovers of a crashed writer. */
const STALE_TMP_MS = 60 * 60 * 1000;

/** In-flight fetches per cache file, so concurrent jobs in one process download a file once. */
const inflight = new Map<string, Promise<string | null>>();
/** Recent misses per cache file (expiry time): a module absent from the store is not asked for again on every job. */
const misses = new Map<string, number>();
const MAX_MISSES = 100_000;

export class SymbolCache {
  /**
   * @param missTtlMs how long "the source does not have it" is remembered in
   *   this process (short: a build uploaded meanwhile is found soon after).
   */
  constructor(
    readonly dir: string,
    readonly maxBytes: number,
    readonly missTtlMs = 60_000,
  ) {}

  /** The file path of a key (`<source>/<build-id>/<kind>`); keys are validated to stay inside the cache. */
  pathOf(key: string): string {
    if (!/^[a-z_]+\/[0-9a-f]+\/[a-z]+$/.test(key)) throw new Error(`bad symbol cache key ${JSON.stringify(key)}`);
    return path.join(this.dir, key);
  }

  /** The cached file for `key`, marked as just used; null on a miss. */
  async get(key: string): Promise<string | null> {
    const file = this.pathOf(key);
    try {
      const now = new Date();
      await fs.utimes(file, now, now);
      return file;
    } catch (e: unknown) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw e;
    }
  }

  /**
   * The cached file for `key`, fetching it on a miss with `download(tmpFile)`,
   * which writes the file and returns false when the source does not have it.
   * Returns the file and whether it was a hit; null when the source has no
   * such file (remembered for `missTtlMs` only, in memory: it may be
   * uploaded later).
   */
  async getOrFetch(key: string, download: (tmpFile: string) => Promise<boolean>): Promise<{ file: string; hit: boolean } | null> {
    const hit = await this.get(key);
    if (hit) return { file: hit, hit: true };
    const file = this.pathOf(key);
    const missUntil = misses.get(file);
    if (missUntil !== undefined) {
      if (missUntil > Date.now()) return null;
      misses.delete(file);
    }
    let p = inflight.get(file);
    if (!p) {
      p = this.insert(key, download).finally(() => inflight.delete(file));
      inflight.set(file, p);
    }
    const got = await p;
    if (!got && this.missTtlMs > 0) {
      if (misses.size >= MAX_MISSES) misses.clear();
      misses.set(file, Date.now() + this.missTtlMs);
    }
    return got ? { file: got, hit: false } : null;
  }

  private async insert(key: string, download: (tmpFile: string) => Promise<boolean>): Promise<string | null> {
    const file = this.pathOf(key);
    const tmpDir = path.join(this.dir, ".tmp");
    await fs.mkdir(tmpDir, { recursive: true });
    const tmp = path.join(tmpDir, `${process.pid}-${randomBytes(6).toString("hex")}`);
    try {
      if (!(await download(tmp))) return null;
      await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.rename(tmp, file);
    } finally {
      await fs.rm(tmp, { force: true });
    }
    await this.evict(key).catch(() => undefined);
    return file;
  }

  /** Every entry with its size and last use. */
  async entries(): Promise<CacheEntry[]> {
    const out: CacheEntry[] = [];
    const walk = async (rel: string, depth: number): Promise<void> => {
      let names: string[];
      try {
        names = await fs.readdir(path.join(this.dir, rel));
      } catch {
        return;
      }
      for (const name of names) {
        if (depth === 0 && name === ".tmp") continue;
        const r = rel ? `${rel}/${name}` : name;
        if (depth < 2) {
          await walk(r, depth + 1);
          continue;
        }
        try {
          const st = await fs.stat(path.join(this.dir, r));
          if (st.isFile()) out.push({ key: r, file: path.join(this.dir, r), size: st.size, usedMs: Math.max(st.mtimeMs, st.atimeMs) });
        } catch {
          // removed concurrently
        }
      }
    };
    await walk("", 0);
    return out;
  }

  /** Total bytes held. */
  async size(): Promise<number> {
    return (await this.entries()).reduce((s, e) => s + e.size, 0);
  }

  /**
   * Removes least recently used entries until the cache fits `maxBytes`,
   * never `keep` (the entry just inserted, even if it alone is larger), and
   * leftover temp files of crashed writers.
   */
  async evict(keep?: string): Promise<{ removed: string[]; bytes: number }> {
    await this.sweepTmp();
    const entries = (await this.entries()).sort((a, b) => a.usedMs - b.usedMs);
    let total = entries.reduce((s, e) => s + e.size, 0);
    const removed: string[] = [];
    for (const e of entries) {
      if (total <= this.maxBytes) break;
      if (e.key === keep) continue;
      try {
        await fs.rm(e.file, { force: true });
        total -= e.size;
        removed.push(e.key);
        await fs.rmdir(path.dirname(e.file)).catch(() => undefined); // only when now empty
      } catch (err: unknown) {
        throw new Error(`symbol cache: cannot remove ${e.file}: ${toError(err).message}`, { cause: err });
      }
    }
    return { removed, bytes: total };
  }

  private async sweepTmp(): Promise<void> {
    const tmpDir = path.join(this.dir, ".tmp");
    let names: string[];
    try {
      names = await fs.readdir(tmpDir);
    } catch {
      return;
    }
    const now = Date.now();
    for (const n of names) {
      const f = path.join(tmpDir, n);
      const st = await fs.stat(f).catch(() => null);
      if (st && now - st.mtimeMs > STALE_TMP_MS) await fs.rm(f, { force: true });
    }
  }
}
