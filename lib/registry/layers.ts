/**
 * Image layers as a file system, without unpacking one: each layer is
 * indexed once (which names it holds, its symlinks, hard links, whiteouts
 * and opaque directories; cached by the layer's digest), names are resolved
 * through the stack of indexes (`lookupInImage`, pure), and only the entries
 * wanted are copied out of the one layer that holds them (`extractFromLayer`).
 *
 * Union rules (the OCI image spec's layer changesets):
 * - The newest layer holding a name wins; `.wh.<name>` in a layer hides
 *   `<name>` (and everything under it) in older layers; `.wh..wh..opq` in a
 *   directory hides everything older under that directory.
 * - A directory an entry lives in exists even when the layer has no entry
 *   for it (tar files without directory entries).
 * - Symlinks are followed like a chroot: an absolute target restarts at the
 *   image root, `..` never climbs above it, at most 40 hops. Hard links name
 *   another entry of the same layer.
 *
 * Names are attacker data: they are keys of a map and never become paths on
 * this machine; extracted bytes go to files the caller names.
 */
import { createReadStream, createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import { once } from "node:events";
import type { Readable } from "node:stream";
import zlib from "node:zlib";
import { walkChrooted } from "../storage/chrootWalk.js";
import { normalizeName, readTar, type TarEntry, type TarSink } from "./tar.js";

/** What a layer holds at one name. `h`: hard link (to `l`, an archive name), `s`: symlink (target `l`). */
export interface IndexEntry {
  t: "f" | "d" | "s" | "h";
  l?: string;
  n?: number;
}

/** The names of one layer (JSON-serializable, cached by digest). */
export interface LayerIndex {
  digest: string;
  entries: Record<string, IndexEntry>;
  /** Names hidden in older layers (`.wh.` files). */
  whiteouts: string[];
  /** Directories whose older contents are hidden (`.wh..wh..opq`). */
  opaque: string[];
}

/** Bounds for reading a layer. */
export interface LayerLimits {
  /** Bytes a layer may decompress to. */
  maxUnpackedBytes: number;
  /** Entries a layer may hold. */
  maxEntries: number;
}

export const DEFAULT_LAYER_LIMITS: LayerLimits = { maxUnpackedBytes: 16 * 1024 * 1024 * 1024, maxEntries: 2_000_000 };

/** A layer that cannot be read (unknown compression, over a bound, corrupt). */
export class LayerError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "LayerError";
  }
}

/** The decompressed tar stream of a layer blob, by its magic bytes (gzip, zstd or plain tar). */
async function openLayer(file: string, limits: LayerLimits): Promise<Readable> {
  const fh = await fs.open(file, "r");
  const head = Buffer.alloc(4);
  await fh.read(head, 0, 4, 0);
  await fh.close();
  const raw = createReadStream(file);
  let out: Readable;
  if (head[0] === 0x1f && head[1] === 0x8b) out = raw.pipe(zlib.createGunzip());
  else if (head.readUInt32LE(0) === 0xfd2fb528) out = raw.pipe(zlib.createZstdDecompress());
  else out = raw;
  if (out !== raw) raw.on("error", (e) => out.destroy(e));
  let n = 0;
  out.on("data", (c: Buffer) => {
    n += c.length;
    if (n > limits.maxUnpackedBytes) out.destroy(new LayerError(`layer ${file}: decompresses to more than ${limits.maxUnpackedBytes} bytes`));
  });
  return out;
}

/** Entries to copy out while a layer is read: archive name → destination file, each up to `maxFileBytes`. */
export interface Grab {
  wanted: Map<string, string>;
  maxFileBytes: number;
}

/** A sink writing one entry to `dest` ("wx": never through an existing name; the caller's directory is fresh). */
async function fileSink(dest: string): Promise<TarSink> {
  const out = createWriteStream(dest, { flags: "wx", mode: 0o644 });
  await once(out, "open");
  return {
    write: async (chunk: Buffer) => {
      if (!out.write(chunk)) await once(out, "drain");
    },
    end: async () => {
      out.end();
      await once(out, "finish");
    },
  };
}

/** The sink for entry `e` when `grab` wants it (the first entry of a name), else null. */
async function grabbing(e: TarEntry, grab: Grab, written: Set<string>): Promise<TarSink | null> {
  const dest = e.type === "file" ? grab.wanted.get(e.name) : undefined;
  if (dest === undefined || written.has(e.name) || e.size > grab.maxFileBytes) return null;
  written.add(e.name);
  return fileSink(dest);
}

/**
 * Reads a layer blob's names into an index, copying out the entries `grab`
 * wants on the way (the names a caller can guess before the index exists:
 * a module's own path is usually stored under that very name), so that
 * the common case reads each layer once. Returns the index and the names written.
 */
export async function indexLayer(file: string, digest: string, limits: LayerLimits = DEFAULT_LAYER_LIMITS, grab?: Grab): Promise<{ index: LayerIndex; grabbed: Set<string> }> {
  const entries: Record<string, IndexEntry> = Object.create(null) as Record<string, IndexEntry>;
  const whiteouts: string[] = [];
  const opaque: string[] = [];
  const grabbed = new Set<string>();
  let count = 0;
  const stream = await openLayer(file, limits);
  const addDirs = (name: string) => {
    for (let i = name.lastIndexOf("/"); i > 0; i = name.lastIndexOf("/", i - 1)) {
      const d = name.slice(0, i);
      if (Object.hasOwn(entries, d)) break;
      entries[d] = { t: "d" };
    }
  };
  try {
    await readTar(stream, (e) => {
      if (++count > limits.maxEntries) throw new LayerError(`layer ${digest}: more than ${limits.maxEntries} entries`);
      const name = e.name;
      if (name === "") return null;
      const slash = name.lastIndexOf("/");
      const dir = slash === -1 ? "" : name.slice(0, slash);
      const base = name.slice(slash + 1);
      addDirs(name);
      if (base === ".wh..wh..opq") opaque.push(dir);
      else if (base.startsWith(".wh.")) whiteouts.push(dir ? `${dir}/${base.slice(4)}` : base.slice(4));
      else if (e.type === "file") entries[name] = { t: "f", n: e.size };
      else if (e.type === "directory") entries[name] = { t: "d" };
      else if (e.type === "symlink") entries[name] = { t: "s", l: e.linkname };
      else if (e.type === "hardlink") entries[name] = { t: "h", l: normalizeName(e.linkname) };
      return grab ? grabbing(e, grab, grabbed) : null;
    });
  } finally {
    stream.destroy();
  }
  return { index: { digest, entries, whiteouts, opaque }, grabbed };
}

/** Where a name of the image lives: the layer (by position in `layers`) and the archive name that holds its bytes. */
export interface ImageLocation {
  layer: number;
  name: string;
  size: number;
}

function hidden(idx: LayerIndex, name: string): boolean {
  const under = (d: string) => d === "" || name === d || name.startsWith(`${d}/`);
  return idx.whiteouts.some(under) || idx.opaque.some((d) => d !== name && under(d));
}

/** The topmost entry for `name` in `layers` (newest first), honouring whiteouts. */
function unionLookup(layers: LayerIndex[], name: string): { layer: number; entry: IndexEntry } | null {
  for (let i = 0; i < layers.length; i++) {
    const idx = layers[i]!;
    // Own keys only: a name like "constructor" must not find Object.prototype's.
    const entry = Object.hasOwn(idx.entries, name) ? idx.entries[name] : undefined;
    if (entry) return { layer: i, entry };
    if (hidden(idx, name)) return null;
  }
  return null;
}

/**
 * Resolves absolute image path `p` through `layers` (newest first) to the
 * regular file that holds its bytes; null when the image has no such file.
 * No I/O (async only because the chroot walk is shared with the disk sources).
 */
export async function lookupInImage(layers: LayerIndex[], p: string): Promise<ImageLocation | null> {
  const r = await walkChrooted<{ layer: number; entry: IndexEntry }>(p, (parts) => {
    const hit = unionLookup(layers, parts.join("/"));
    if (!hit) return null;
    if (hit.entry.t === "s") return { kind: "symlink", target: hit.entry.l ?? "" };
    return hit.entry.t === "d" ? { kind: "dir" } : { kind: "leaf", value: hit };
  });
  if (!r || r.node.kind !== "leaf") return null;
  const { layer, entry } = r.node.value;
  if (entry.t === "h") {
    // A hard link names another entry of the same layer, the one that holds the bytes.
    const entries = layers[layer]!.entries;
    const target = entry.l !== undefined && Object.hasOwn(entries, entry.l) ? entries[entry.l] : undefined;
    return target?.t === "f" ? { layer, name: entry.l!, size: target.n ?? 0 } : null;
  }
  return { layer, name: r.parts.join("/"), size: entry.n ?? 0 };
}

/**
 * Copies the entries `wanted` (archive name → destination file) out of a
 * layer blob, each up to `maxFileBytes`. Returns the names written; a
 * bigger entry is left out.
 */
export async function extractFromLayer(file: string, wanted: Map<string, string>, maxFileBytes: number, limits: LayerLimits = DEFAULT_LAYER_LIMITS): Promise<Set<string>> {
  const written = new Set<string>();
  const stream = await openLayer(file, limits);
  try {
    await readTar(
      stream,
      (e) => grabbing(e, { wanted, maxFileBytes }, written),
      () => written.size === wanted.size,
    );
  } finally {
    stream.destroy();
  }
  return written;
}
