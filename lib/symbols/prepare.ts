/**
 * Everything before gdb: inventory the core, walk the ladder for each module,
 * assemble the per-job tree. Shared by analyzeDump (lib/analyze.ts) and `symbols list`.
 */
import path from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { isForeign } from "./arch.js";
import { SymbolCache } from "./cache.js";
import { parseDebuginfodUrls } from "./debuginfod.js";
import type { CoreNotes } from "./coreNotes.js";
import { inventoryCore, type Inventory } from "./inventory.js";
import { resolveModules, type ResolvedModule, type SourceName } from "./resolve.js";
import { openSymbolStore } from "./store.js";
import { assembleTree, type SymbolTree } from "./tree.js";

/** Symbol sources, as `loadConfig().symbols` gives them plus the S3 client. */
export interface SymbolsOptions {
  /** Symbol store: a directory or s3://bucket/prefix. */
  store?: string;
  cacheDir: string;
  cacheMaxBytes: number;
  /** DEBUGINFOD_URLS (space- or comma-separated). */
  debuginfodUrls?: string;
  /** Directory with the crashed container's files (an extracted image). */
  sysroot?: string;
  s3?: S3Client | null;
  /** Ladder order; default `DEFAULT_ORDER` of ./resolve.ts (exe, sysroot, host, symbol_store, debuginfod). */
  order?: readonly SourceName[];
  /**
   * Also let gdb's own debuginfod client query DEBUGINFOD_URLS (default off:
   * the worker has already fetched every executable and debug file those
   * servers have for the core's modules; gdb's client adds lookups per job
   * for sources and the vDSO, which the result does not use: free on
   * loopback, a round trip each against a remote server).
   */
  gdbDebuginfod?: boolean;
  /** This machine's root for the `host` source ("/"). */
  hostRoot?: string;
  /**
   * Take separate debug files from this machine too (libc6-dbg's
   * /usr/lib/debug); default true. The goldens turn it off, so that they do
   * not depend on what debug packages a machine has.
   */
  hostDebugFiles?: boolean;
  fetch?: typeof fetch;
}

export interface PreparedSymbols {
  inventory: Inventory;
  modules: ResolvedModule[];
  tree: SymbolTree;
  debuginfodUrls: string[];
  /** The core is of another architecture than this machine: use gdb-multiarch. */
  foreign: boolean;
  durationMs: number;
}

/**
 * Inventories `core`, resolves its modules and builds the tree under
 * `<workDir>/symbols`. Throws NotElfError for a non-core and UnstripError when
 * eu-unstrip cannot run; source failures do not throw (they are in each
 * module's `errors`). An S3 store without a client is a PermanentError.
 */
export async function prepareSymbols(opts: {
  core: string;
  workDir: string;
  exe?: string | null;
  sysroot?: string | null;
  symbols?: SymbolsOptions;
  signal?: AbortSignal;
  /** The core's notes, when the caller read them already. */
  notes?: CoreNotes;
}): Promise<PreparedSymbols> {
  const t0 = performance.now();
  const s = opts.symbols;
  const inventory = await inventoryCore(opts.core, { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.notes ? { notes: opts.notes } : {}) });
  const debuginfodUrls = parseDebuginfodUrls(s?.debuginfodUrls);
  const modules = await resolveModules(inventory.modules, {
    exe: opts.exe ?? null,
    sysroot: opts.sysroot ?? s?.sysroot ?? null,
    store: s?.store ? openSymbolStore(s.store, s.s3) : null,
    cache: s ? new SymbolCache(s.cacheDir, s.cacheMaxBytes) : null,
    debuginfodUrls,
    ...(s?.order ? { order: s.order } : {}),
    ...(s?.hostRoot ? { hostRoot: s.hostRoot } : {}),
    ...(s?.hostDebugFiles !== undefined ? { hostDebugFiles: s.hostDebugFiles } : {}),
    ...(s?.fetch ? { fetch: s.fetch } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  const tree = await assembleTree(modules, path.join(opts.workDir, "symbols"));
  return { inventory, modules, tree, debuginfodUrls, foreign: isForeign(inventory.machine), durationMs: performance.now() - t0 };
}
