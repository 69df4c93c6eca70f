/**
 * Everything before gdb: inventory the core, walk the ladder for each module,
 * assemble the per-job tree. Shared by analyzeDump (lib/analyze.ts) and `symbols list`.
 */
import fs from "node:fs/promises";
import path from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { toError } from "../errors.js";
import type { RegistryClientOptions } from "../registry/client.js";
import { isForeign } from "./arch.js";
import { SymbolCache } from "./cache.js";
import { parseDebuginfodUrls } from "./debuginfod.js";
import type { CoreNotes } from "../elf/coreNotes.js";
import type { ImageFiles } from "./image.js";
import { inventoryCore, type Inventory } from "./inventory.js";
import { DEFAULT_ORDER, resolveModules, type ResolvedModule, type SourceName } from "./resolve.js";
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
  /** The `image` source (IMAGE_SYMBOLS, REGISTRY_*, IMAGE_CACHE_*): off when absent. */
  image?: ImageSymbolsOptions;
}

/** The image source's settings, as `loadConfig().symbols.image` gives them. */
export interface ImageSymbolsOptions {
  enabled: boolean;
  cacheDir: string;
  cacheMaxBytes: number;
  maxFileBytes: number;
  /** REGISTRY_AUTH_FILE, read per job (a mounted secret may be rotated). */
  authFile?: string;
  registry: Omit<RegistryClientOptions, "auth" | "signal">;
}

export interface PreparedSymbols {
  inventory: Inventory;
  modules: ResolvedModule[];
  tree: SymbolTree;
  debuginfodUrls: string[];
  /** The core is of another architecture than this machine: use gdb-multiarch. */
  foreign: boolean;
  /** What the image source did (null when it did not run: no image named, or IMAGE_SYMBOLS off). */
  image: ImageFiles | null;
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
  /** The crashed container's image reference (the event's data.image), for the `image` source. */
  image?: string | null;
}): Promise<PreparedSymbols> {
  const t0 = performance.now();
  const s = opts.symbols;
  const inventory = await inventoryCore(opts.core, { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.notes ? { notes: opts.notes } : {}) });
  const debuginfodUrls = parseDebuginfodUrls(s?.debuginfodUrls);
  const order = s?.order ?? DEFAULT_ORDER;
  const image = s?.image?.enabled && opts.image && order.includes("image") ? await imageFiles(opts.image, s.image, inventory, path.join(opts.workDir, "image"), opts.signal) : null;
  const modules = await resolveModules(inventory.modules, {
    image,
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
  return { inventory, modules, tree, debuginfodUrls, foreign: isForeign(inventory.machine), image, durationMs: performance.now() - t0 };
}

/**
 * Runs the image source; an unreadable auth file is its error like any
 * registry failure (a warning, never a failure). The registry client and the
 * image source load here, for an event that names an image: not for every
 * `analyze` (bench/startup.ts).
 */
async function imageFiles(reference: string, o: ImageSymbolsOptions, inventory: Inventory, dir: string, signal?: AbortSignal): Promise<ImageFiles> {
  const [{ parseAuthFile, RegistryClient }, { pullImageFiles }] = await Promise.all([import("../registry/client.js"), import("./image.js")]);
  let auth = {};
  if (o.authFile) {
    try {
      auth = parseAuthFile(await fs.readFile(o.authFile, "utf8"), `REGISTRY_AUTH_FILE ${o.authFile}`);
    } catch (e: unknown) {
      const error = `REGISTRY_AUTH_FILE ${o.authFile}: ${toError(e).message}`;
      return { reference, image: null, byBuildId: new Map(), error, stats: { imageBytes: 0, pulledBytes: 0, layersOpened: 0, cacheHits: 0, durationMs: 0 } };
    }
  }
  const client = new RegistryClient({ ...o.registry, auth, ...(signal ? { signal } : {}) });
  return pullImageFiles(
    reference,
    inventory.modules,
    { client, cache: new SymbolCache(o.cacheDir, o.cacheMaxBytes, 0), dir, machine: inventory.machine, maxFileBytes: o.maxFileBytes },
    signal,
  );
}
