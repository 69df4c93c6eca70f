/**
 * The `image` symbol source: the crashed container's own files, pulled from
 * its registry (the event's `data.image`), by the build-ids the core
 * recorded. Runs once per job before the ladder walks; the ladder then
 * checks what it found like any other candidate (same build-id or unused).
 *
 * What it pulls, in order of cost:
 * 1. The manifest (always: the result records the resolved digest; a tag
 *    may have moved since the crash, so it is reported, not trusted).
 * 2. Each layer's index (names, links, whiteouts), cached by layer digest:
 *    a second crash of the same image opens no layer just to find names.
 * 3. Only for modules whose files are not cached by build-id yet: the layers
 *    that hold their wanted paths (newest layer that has the name wins,
 *    symlinks followed across layers), each read once, stopping when the
 *    wanted entries are out. Blobs are cached by digest.
 * Wanted per module: the module's path (and its merged-/usr aliases), the
 * image's `/usr/lib/debug/.build-id/xx/yyy.debug` and `/usr/lib/debug<path>.debug`,
 * and, when the binary has no DWARF and none of those exist, its
 * `.gnu_debuglink` name beside it, in `.debug/` and under `/usr/lib/debug`.
 *
 * One cache (IMAGE_CACHE_DIR, LRU bounded by IMAGE_CACHE_MAX_BYTES) holds
 * blobs, indexes and files, shared by the jobs of a worker. Entries are
 * hard-linked into the job directory before use, so eviction cannot pull
 * them away mid-job. Paths inside the image never become paths here:
 * extracted files get numbered names in the job's directory.
 *
 * Failures (no such image, 401, a layer over a bound) end only this source:
 * they come back as `error`, which the analysis reports as a warning.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { toError } from "../errors.js";
import { RegistryError, type Layer, type RegistryClient, type ResolvedImage } from "../registry/client.js";
import { DEFAULT_LAYER_LIMITS, extractFromLayer, indexLayer, LayerError, lookupInImage, type ImageLocation, type LayerIndex, type LayerLimits } from "../registry/layers.js";
import { ImageReferenceError, parseReference } from "../registry/reference.js";
import { TarError } from "../registry/tar.js";
import { describeElf, type ElfDescription } from "../elf/buildId.js";
import type { SymbolCache } from "./cache.js";
import type { InventoryModule } from "./inventory.js";
import { pathAliases } from "./resolve.js";

/** A file of the image, verified to be the module's build. */
export interface ImageFile {
  file: string;
  /** Digest of the layer that holds it. */
  layer: string;
  /** Its path in the image (after symlinks). */
  path: string;
  cached: boolean;
}

/** What the image source found for one job. */
export interface ImageFiles {
  reference: string;
  /** Null when the manifest could not be resolved. */
  image: Pick<ResolvedImage, "digest" | "manifestDigest" | "platform"> | null;
  /** Per build-id: its binary and its separate debug file. */
  byBuildId: Map<string, { executable?: ImageFile; debuginfo?: ImageFile }>;
  /** Why the image could not be used, when it could not (a warning, never a failure). */
  error: string | null;
  stats: ImageStats;
}

/** Cost of the source for one job, for logs and the bench. */
export interface ImageStats {
  /** Sum of the layers' compressed sizes. */
  imageBytes: number;
  /** Bytes transferred from the registry (blobs). */
  pulledBytes: number;
  /** Layers read (from the registry or the blob cache) to index or extract. */
  layersOpened: number;
  /** Modules whose files came from the cache by build-id. */
  cacheHits: number;
  durationMs: number;
}

export interface ImageSourceOptions {
  client: RegistryClient;
  cache: SymbolCache;
  /** The job's directory for this source's files (created). */
  dir: string;
  /** The core's machine (x86_64, aarch64): picks the platform of an index. */
  machine: string;
  maxFileBytes?: number;
  limits?: LayerLimits;
}

const hexOf = (digest: string) => digest.replace(/^sha256:/, "");

/** Where an image keeps a module's separate debug file: by build-id, and by path. */
function debugPaths(m: InventoryModule): string[] {
  const id = m.build_id!;
  return [`/usr/lib/debug/.build-id/${id.slice(0, 2)}/${id.slice(2)}.debug`, `/usr/lib/debug${m.path}.debug`];
}

/**
 * Looks up the modules' files in image `reference`. Never throws for the
 * image's failure (see `error`); throws only when aborted.
 */
export async function pullImageFiles(reference: string, modules: InventoryModule[], opts: ImageSourceOptions, signal?: AbortSignal): Promise<ImageFiles> {
  const t0 = performance.now();
  const stats: ImageStats = { imageBytes: 0, pulledBytes: 0, layersOpened: 0, cacheHits: 0, durationMs: 0 };
  const out: ImageFiles = { reference, image: null, byBuildId: new Map(), error: null, stats };
  try {
    await pull(reference, modules, opts, out);
  } catch (e: unknown) {
    if (signal?.aborted) throw e;
    // The reason first (not_found, unauthorized, …): what an operator greps for.
    out.error =
      e instanceof RegistryError
        ? `${e.reason}: ${e.message}`
        : e instanceof ImageReferenceError
          ? `invalid_reference: ${e.message}`
          : e instanceof LayerError || e instanceof TarError
            ? `bad_layer: ${e.message}`
            : toError(e).message;
  }
  stats.durationMs = Math.round(performance.now() - t0);
  return out;
}

/** A cache entry linked into the job directory (eviction-proof for the job's lifetime). */
async function pin(file: string, dir: string, n: number): Promise<string> {
  const dest = path.join(dir, `pin-${n}`);
  try {
    await fs.link(file, dest);
    return dest;
  } catch {
    return file; // another file system: used in place
  }
}

async function pull(reference: string, modules: InventoryModule[], opts: ImageSourceOptions, out: ImageFiles): Promise<void> {
  const ref = parseReference(reference);
  const { client, cache, dir } = opts;
  const limits = opts.limits ?? DEFAULT_LAYER_LIMITS;
  const maxFileBytes = opts.maxFileBytes ?? 2 * 1024 * 1024 * 1024;
  await fs.mkdir(dir, { recursive: true });
  let seq = 0;
  const image = await client.resolve(ref, opts.machine);
  out.image = { digest: image.digest, manifestDigest: image.manifestDigest, platform: image.platform };
  out.stats.imageBytes = image.layers.reduce((s, l) => s + l.size, 0);
  const newestFirst = [...image.layers].reverse();

  const blobOf = async (layer: Layer): Promise<string> => {
    const got = await cache.getOrFetch(`blob/${hexOf(layer.digest)}/layer`, async (tmp) => {
      out.stats.pulledBytes += await client.fetchBlob(ref, layer, tmp);
      return true;
    });
    if (!got) throw new RegistryError("not_found", `layer ${layer.digest} not found`);
    out.stats.layersOpened++;
    return pin(got.file, dir, seq++);
  };
  // Names worth copying out while a layer is indexed anyway: the wanted paths as
  // stored (usually the very names in the archive), so a cold job reads each layer once.
  const guesses = new Set(
    modules
      .filter((m) => m.build_id && m.invalid === undefined)
      .flatMap((m) => [...pathAliases(m.path), ...debugPaths(m)])
      .map((p) => p.replace(/^\/+/, "")),
  );
  /** Per layer position: archive names already copied out, and where. */
  const have = new Map<number, Map<string, string>>();
  const indexes: LayerIndex[] = [];
  for (const [i, layer] of newestFirst.entries()) {
    const got = await cache.getOrFetch(`index/${hexOf(layer.digest)}/json`, async (tmp) => {
      const wanted = new Map([...guesses].map((n) => [n, path.join(dir, `file-${seq++}`)]));
      const r = await indexLayer(await blobOf(layer), layer.digest, limits, { wanted, maxFileBytes });
      have.set(i, new Map([...r.grabbed].map((n) => [n, wanted.get(n)!])));
      await fs.writeFile(tmp, JSON.stringify(r.index));
      return true;
    });
    if (!got) throw new RegistryError("not_found", `layer ${layer.digest} could not be indexed`);
    indexes.push(JSON.parse(await fs.readFile(got.file, "utf8")) as LayerIndex);
  }

  type Extracted = { file: string; layer: string; path: string };
  /** Extracts every existing candidate of each list, reading each layer once; per list, the files in candidate order. */
  const fetchPaths = async (lists: string[][]): Promise<Extracted[][]> => {
    const plan: ImageLocation[][] = [];
    for (const cands of lists) {
      const locs: ImageLocation[] = [];
      for (const p of cands) {
        const loc = await lookupInImage(indexes, p);
        if (loc && loc.size <= maxFileBytes) locs.push(loc);
      }
      plan.push(locs);
    }
    const toExtract = new Map<number, Map<string, string>>();
    for (const loc of plan.flat()) {
      if (have.get(loc.layer)?.has(loc.name)) continue; // copied out while indexing
      const m = toExtract.get(loc.layer) ?? new Map<string, string>();
      if (!m.has(loc.name)) m.set(loc.name, path.join(dir, `file-${seq++}`));
      toExtract.set(loc.layer, m);
    }
    for (const [i, wanted] of toExtract) {
      const written = await extractFromLayer(await blobOf(newestFirst[i]!), wanted, maxFileBytes, limits);
      const m = have.get(i) ?? new Map<string, string>();
      for (const n of written) m.set(n, wanted.get(n)!);
      have.set(i, m);
    }
    return plan.map((locs) =>
      locs.flatMap((loc) => {
        const file = have.get(loc.layer)?.get(loc.name);
        return file ? [{ file, layer: newestFirst[loc.layer]!.digest, path: `/${loc.name}` }] : [];
      }),
    );
  };

  /** Puts a verified file into the cache by build-id and returns the job's pinned copy. */
  const keep = async (id: string, kind: "executable" | "debuginfo", f: Extracted): Promise<ImageFile> => {
    await cache.getOrFetch(`image/${id}/${kind}`, async (tmp) => {
      await fs.copyFile(f.file, tmp);
      return true;
    });
    return { ...f, cached: false };
  };
  /** The first of `files` that is the module's build (and has code, or DWARF). */
  const verify = async (files: Extracted[], id: string, want: "code" | "debug"): Promise<{ f: Extracted; desc: ElfDescription } | null> => {
    for (const f of files) {
      const desc = await describeElf(f.file).catch(() => null);
      if (desc && desc.buildId === id && (want === "code" ? desc.hasCode : desc.hasDebugInfo)) return { f, desc };
    }
    return null;
  };

  const mods = modules.filter((m) => m.build_id && m.invalid === undefined);
  const needBinary: InventoryModule[] = [];
  for (const m of mods) {
    const id = m.build_id!;
    const entry: { executable?: ImageFile; debuginfo?: ImageFile } = {};
    for (const kind of ["executable", "debuginfo"] as const) {
      const hit = await cache.get(`image/${id}/${kind}`);
      // Where it lives in this image, for the report (the index says it without opening a layer).
      const loc = hit ? await lookupInImage(indexes, m.path) : null;
      if (hit) entry[kind] = { file: await pin(hit, dir, seq++), layer: loc ? newestFirst[loc.layer]!.digest : "", path: loc ? `/${loc.name}` : m.path, cached: true };
    }
    if (entry.executable) out.stats.cacheHits++;
    out.byBuildId.set(id, entry);
    if (!entry.executable || !entry.debuginfo) needBinary.push(m);
  }

  // Round 1: binaries not cached, and the debug files by build-id and by path.
  const lists: string[][] = [];
  for (const m of needBinary) {
    const e = out.byBuildId.get(m.build_id!)!;
    lists.push(e.executable ? [] : pathAliases(m.path));
    lists.push(e.debuginfo ? [] : debugPaths(m));
  }
  const got = await fetchPaths(lists);
  const linkRound: Array<{ m: InventoryModule; names: string[] }> = [];
  for (const [i, m] of needBinary.entries()) {
    const id = m.build_id!;
    const e = out.byBuildId.get(id)!;
    const bin = await verify(got[2 * i] ?? [], id, "code");
    if (bin) e.executable = await keep(id, "executable", bin.f);
    const dbg = await verify(got[2 * i + 1] ?? [], id, "debug");
    if (dbg) e.debuginfo = await keep(id, "debuginfo", dbg.f);
    const desc = bin?.desc ?? (e.executable ? await describeElf(e.executable.file).catch(() => null) : null);
    if (!e.debuginfo && desc && !desc.hasDebugInfo && desc.debuglink) {
      const d = path.posix.dirname(e.executable?.path ?? m.path);
      linkRound.push({ m, names: [`${d}/${desc.debuglink}`, `${d}/.debug/${desc.debuglink}`, `/usr/lib/debug${d}/${desc.debuglink}`] });
    }
  }
  // Round 2: .gnu_debuglink names (known only once the binary is out).
  if (linkRound.length > 0) {
    const links = await fetchPaths(linkRound.map((l) => l.names));
    for (const [i, { m }] of linkRound.entries()) {
      const dbg = await verify(links[i] ?? [], m.build_id!, "debug");
      if (dbg) out.byBuildId.get(m.build_id!)!.debuginfo = await keep(m.build_id!, "debuginfo", dbg.f);
    }
  }
}
