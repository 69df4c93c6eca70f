/**
 * The resolution ladder: for every module of a core's inventory, find the
 * file gdb should map (the "binary": it has code) and, when the binary has
 * no DWARF, a separate debug file, by walking the sources in a configurable
 * order:
 *
 *   exe           the file the operator named (--exe), for the executable only
 *   sysroot       a directory holding the crashed container's files (an
 *                 extracted image): <sysroot>/<module path>, symlinks
 *                 resolved inside the sysroot, and its /usr/lib/debug
 *   image         the crashed container's image from its registry (the
 *                 event's data.image): the files at the module's path and
 *                 its debug files, pulled by ./image.ts before the walk
 *   host          this machine's own files at the module's path and its
 *                 /usr/lib/debug/.build-id
 *   symbol_store  <store>/<build-id>/{executable,debuginfo}, local or S3
 *                 (S3 through the local cache)
 *   debuginfod    <url>/buildid/<build-id>/{executable,debuginfo}, through the cache
 *
 * `image` comes before `host`: a container's libc is almost never the
 * worker's build, and the image has the very file the process mapped.
 * `host` comes before the network by default: it is used only for the very
 * same build (equal build-id), so it can only save round trips, and a
 * container's libc that happens to match the worker's is found without
 * asking S3 or debuginfod on every job.
 * The rule that makes the answer trustworthy: a candidate is used only when
 * its build-id equals the one the core recorded. A candidate that differs is
 * remembered as rejected; if nothing matches, the module is `mismatched`
 * (there was a file, it was the wrong build) rather than `missing`. The
 * worker's own /lib never stands in for a container's library unless it is
 * the same build. A module whose build-id the core did not record can only
 * be resolved by an explicit --exe, the operator's word.
 */
import fs from "node:fs/promises";
import path from "node:path";
import PQueue from "p-queue";
import { toError } from "../errors.js";
import { walkChrooted, type WalkNode } from "../storage/chrootWalk.js";
import { describeElf, type ElfDescription } from "../elf/buildId.js";
import type { SymbolCache } from "./cache.js";
import { debuginfodFetch } from "./debuginfod.js";
import type { ImageFiles } from "./image.js";
import type { InventoryModule } from "./inventory.js";
import type { StoreKind, SymbolStore } from "./store.js";

export const SOURCES = ["exe", "sysroot", "image", "host", "symbol_store", "debuginfod"] as const;
export type SourceName = (typeof SOURCES)[number];
/** Local sources first (the operator's, the image's, this machine's same builds), then the network. */
export const DEFAULT_ORDER: readonly SourceName[] = SOURCES;

export interface Candidate {
  source: SourceName;
  file: string;
  build_id: string | null;
}

export interface ResolvedModule extends InventoryModule {
  /** `invalid`: the core's path for it is not a usable name (see InventoryModule.invalid); nothing was looked up. */
  status: "found" | "missing" | "mismatched" | "invalid";
  /** Where the binary came from (or the debug file, when only that was found). */
  source: SourceName | null;
  /** The file gdb maps for this module. */
  file: string | null;
  /** True when `file` came from the cache (hard-link it, it may be evicted). */
  cached: boolean;
  /** A separate debug file, when the binary has no DWARF and one was found. */
  debug: { file: string; source: SourceName; cached: boolean } | null;
  /** What gdb can name with what was found. */
  symbols: "dwarf" | "symtab" | "dynsym" | "none";
  /** Files found at the right place but of another build: reported, never used. */
  rejected: Candidate[];
  /** Sources that failed (network, permissions): the module may exist there. */
  errors: string[];
  /** DT_SONAME of the found binary: the loader's name for it (libstdc++.so.6 for libstdc++.so.6.0.30). */
  soname: string | null;
  /** Set when the core recorded no build-id and an explicit --exe was trusted. */
  unverified?: boolean;
  /** For source `image`: the image reference and the layer that held the binary (and the debug file). */
  image?: { reference: string; layer: string | null; debug_layer: string | null };
}

export interface ResolveOptions {
  exe?: string | null;
  sysroot?: string | null;
  store?: SymbolStore | null;
  /** Required for remote stores and debuginfod. */
  cache?: SymbolCache | null;
  debuginfodUrls?: string[];
  /** This machine's root; "/" unless a test says otherwise. */
  hostRoot?: string;
  /** Take separate debug files (libc6-dbg's /usr/lib/debug) from this machine too; default true. */
  hostDebugFiles?: boolean;
  order?: readonly SourceName[];
  fetch?: typeof fetch;
  signal?: AbortSignal;
  /** Modules resolved in parallel (network sources dominate). */
  concurrency?: number;
  debuginfodTimeoutMs?: number;
  /** What the image source pulled for this job (./image.ts). */
  image?: ImageFiles | null;
}

/** Parses a ladder order like "exe,sysroot,symbol_store,debuginfod,host"; throws on unknown names. */
export function parseOrder(text: string): SourceName[] {
  const names = text.split(/[\s,]+/).filter(Boolean);
  for (const n of names) {
    if (!(SOURCES as readonly string[]).includes(n)) throw new Error(`unknown symbol source ${JSON.stringify(n)} (expected ${SOURCES.join(", ")})`);
  }
  return names as SourceName[];
}

const USR_MERGED = ["lib", "lib64", "lib32", "libx32", "bin", "sbin"];

/**
 * The paths a module may be known by inside a merged-/usr image: NT_FILE
 * records the real path (/usr/lib/x86_64-linux-gnu/libc.so.6) while the
 * dynamic loader names it by its search path (/lib/x86_64-linux-gnu/libc.so.6).
 */
export function pathAliases(p: string): string[] {
  const out = [p];
  const m = /^\/usr\/([^/]+)(\/.*)$/.exec(p);
  if (m && USR_MERGED.includes(m[1]!)) out.push(`/${m[1]}${m[2]}`);
  const n = /^\/([^/]+)(\/.*)$/.exec(p);
  if (n && USR_MERGED.includes(n[1]!)) out.push(`/usr/${n[1]}${n[2]}`);
  return out;
}

/**
 * Resolves `p` inside `root` like a chroot would: absolute symlink targets
 * restart at `root`, `..` never climbs above it. A container image's
 * `/lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/…` must land in the
 * image, not on this machine. Returns null when the path does not exist.
 */
export async function resolveInRoot(root: string, p: string): Promise<string | null> {
  const r = await walkChrooted<true>(p, async (parts): Promise<WalkNode<true>> => {
    const here = path.join(root, ...parts);
    const st = await fs.lstat(here).catch(() => null);
    if (!st) return null;
    if (st.isSymbolicLink()) return { kind: "symlink", target: await fs.readlink(here) };
    return st.isDirectory() ? { kind: "dir" } : { kind: "leaf", value: true };
  });
  return r ? path.join(root, ...r.parts) : null;
}

function debugLinkPath(buildId: string): string {
  return `/usr/lib/debug/.build-id/${buildId.slice(0, 2)}/${buildId.slice(2)}.debug`;
}

type Want = "binary" | "debug";

interface Found {
  desc: ElfDescription;
  source: SourceName;
  cached: boolean;
  /** The image layer it came from (source `image`). */
  layer?: string;
}

/**
 * One module's walk down the ladder: each source is a method, and what the
 * walk meets on the way (candidates of another build, sources that failed)
 * is gathered in `rejected` and `errors`. Never throws for a source's
 * failure (only for an abort).
 */
class ModuleLookup {
  readonly rejected: Candidate[] = [];
  readonly errors: string[] = [];
  private readonly seenRejected = new Set<string>();
  private readonly id: string | null;

  constructor(
    private readonly mod: InventoryModule,
    private readonly opts: ResolveOptions,
  ) {
    this.id = mod.build_id;
  }

  /** The first source, in the ladder's order, with a file for `want`. */
  async walk(want: Want): Promise<Found | null> {
    for (const source of this.opts.order ?? DEFAULT_ORDER) {
      const f = await this.trySource(source, want);
      if (f) return f;
    }
    return null;
  }

  private async trySource(source: SourceName, want: Want): Promise<Found | null> {
    const kind: StoreKind = want === "binary" ? "executable" : "debuginfo";
    switch (source) {
      case "exe":
        return this.fromExe(want);
      case "sysroot":
        return this.fromRoot(source, this.opts.sysroot, want);
      case "host":
        if (want !== "binary" && this.opts.hostDebugFiles === false) return null;
        return this.fromRoot(source, this.opts.hostRoot ?? "/", want);
      case "image":
        return this.fromImage(kind, want);
      case "symbol_store":
        return this.fromSymbolStore(kind, want);
      case "debuginfod":
        return this.fromDebuginfod(kind, want);
    }
  }

  /** A candidate, used when its build-id is the module's and it has what is wanted; another build is remembered as rejected. */
  private async check(source: SourceName, file: string, cached: boolean, want: Want): Promise<Found | null> {
    let desc: ElfDescription;
    try {
      desc = await describeElf(file);
    } catch (e: unknown) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTDIR") this.errors.push(`${source}: ${file}: ${toError(e).message}`);
      return null;
    }
    if (this.id !== null && desc.buildId !== this.id) {
      const real = await fs.realpath(file).catch(() => file);
      if (!this.seenRejected.has(real)) {
        this.seenRejected.add(real);
        this.rejected.push({ source, file, build_id: desc.buildId });
      }
      return null;
    }
    if (want === "binary" ? !desc.hasCode : !desc.hasDebugInfo) return null;
    return { desc, source, cached };
  }

  /** A remote source's file through the symbol cache (fetched into it on a miss). */
  private async fromCache(source: SourceName, kind: StoreKind, fetchTo: (tmp: string) => Promise<boolean>, want: Want): Promise<Found | null> {
    if (!this.opts.cache || this.id === null) return null;
    try {
      const got = await this.opts.cache.getOrFetch(`${source}/${this.id}/${kind}`, fetchTo);
      return got ? await this.check(source, got.file, true, want) : null;
    } catch (e: unknown) {
      if (this.opts.signal?.aborted) throw e;
      this.errors.push(`${source}: ${toError(e).message}`);
      return null;
    }
  }

  private async fromExe(want: Want): Promise<Found | null> {
    const exe = this.opts.exe;
    if (!this.mod.executable || !exe) return null;
    if (this.id === null) {
      // Nothing to verify against: the operator's explicit file is trusted, and said so.
      try {
        const desc = await describeElf(exe);
        return (want === "binary" ? desc.hasCode : desc.hasDebugInfo) ? { desc, source: "exe", cached: false } : null;
      } catch (e: unknown) {
        this.errors.push(`exe: ${exe}: ${toError(e).message}`);
        return null;
      }
    }
    return this.check("exe", exe, false, want);
  }

  /** The module's paths (or its debug files' paths) inside a root: the sysroot or this machine's. */
  private async fromRoot(source: "sysroot" | "host", root: string | null | undefined, want: Want): Promise<Found | null> {
    const id = this.id;
    if (!root || id === null) return null;
    const paths = want === "binary" ? pathAliases(this.mod.path) : [debugLinkPath(id), `/usr/lib/debug${this.mod.path}.debug`];
    for (const p of paths) {
      const real = await resolveInRoot(root, p);
      if (!real) continue;
      const f = await this.check(source, real, false, want);
      if (f) return f;
    }
    return null;
  }

  private async fromImage(kind: StoreKind, want: Want): Promise<Found | null> {
    const f = this.id === null ? undefined : this.opts.image?.byBuildId.get(this.id)?.[kind];
    if (!f) return null;
    const found = await this.check("image", f.file, f.cached, want);
    return found ? { ...found, layer: f.layer } : null;
  }

  private async fromSymbolStore(kind: StoreKind, want: Want): Promise<Found | null> {
    const { store, signal, cache } = this.opts;
    const id = this.id;
    if (!store || id === null) return null;
    const local = store.localPath(id, kind);
    if (local) return this.check("symbol_store", local, false, want);
    return this.fromCache("symbol_store", kind, (tmp) => store.fetchTo(id, kind, tmp, signal, cache?.maxBytes), want);
  }

  private async fromDebuginfod(kind: StoreKind, want: Want): Promise<Found | null> {
    const opts = this.opts;
    const urls = opts.debuginfodUrls ?? [];
    const id = this.id;
    if (urls.length === 0 || id === null) return null;
    return this.fromCache(
      "debuginfod",
      kind,
      async (tmp) => {
        const r = await debuginfodFetch(urls, id, kind, tmp, {
          ...(opts.fetch ? { fetch: opts.fetch } : {}),
          ...(opts.signal ? { signal: opts.signal } : {}),
          ...(opts.debuginfodTimeoutMs ? { timeoutMs: opts.debuginfodTimeoutMs } : {}),
          ...(opts.cache ? { maxBytes: opts.cache.maxBytes } : {}),
        });
        this.errors.push(...r.errors.map((m) => `debuginfod: ${m}`));
        return r.url !== null;
      },
      want,
    );
  }
}

/** The module as resolved from what the walk found: status, files, what gdb can name, the image's layers. */
function resolvedFrom(mod: InventoryModule, opts: ResolveOptions, lookup: ModuleLookup, binary: Found | null, debug: Found | null): ResolvedModule {
  const { rejected, errors } = lookup;
  const primary = binary ?? debug;
  const symbols: ResolvedModule["symbols"] = binary?.desc.hasDebugInfo || debug ? "dwarf" : binary?.desc.hasSymtab ? "symtab" : binary ? "dynsym" : "none";
  return {
    ...mod,
    status: primary ? "found" : rejected.length > 0 ? "mismatched" : "missing",
    source: primary?.source ?? null,
    file: primary ? primary.desc.path : (rejected[0]?.file ?? null),
    cached: primary?.cached ?? false,
    debug: binary && debug ? { file: debug.desc.path, source: debug.source, cached: debug.cached } : null,
    symbols,
    soname: binary?.desc.soname ?? null,
    rejected,
    errors,
    ...(primary && mod.build_id === null ? { unverified: true } : {}),
    ...(opts.image && (primary?.source === "image" || debug?.source === "image")
      ? {
          image: {
            reference: opts.image.reference,
            layer: primary?.source === "image" ? (primary.layer ?? null) : null,
            debug_layer: debug?.source === "image" ? (debug.layer ?? null) : null,
          },
        }
      : {}),
  };
}

/** Walks the ladder for one module. Never throws for a source's failure: it lands in `errors`. */
export async function resolveModule(mod: InventoryModule, opts: ResolveOptions): Promise<ResolvedModule> {
  if (mod.invalid !== undefined) {
    // Never a lookup key: its path would name files outside every source root.
    return { ...mod, status: "invalid", source: null, file: null, cached: false, debug: null, symbols: "none", soname: null, rejected: [], errors: [mod.invalid] };
  }
  const lookup = new ModuleLookup(mod, opts);
  const binary = await lookup.walk("binary");
  const debug = binary?.desc.hasDebugInfo ? null : await lookup.walk("debug");
  return resolvedFrom(mod, opts, lookup, binary, debug);
}

/** Resolves every module of an inventory, a few at a time. */
export async function resolveModules(modules: InventoryModule[], opts: ResolveOptions): Promise<ResolvedModule[]> {
  const queue = new PQueue({ concurrency: opts.concurrency ?? 8 });
  return Promise.all(modules.map((m) => queue.add(() => resolveModule(m, opts)) as Promise<ResolvedModule>));
}
