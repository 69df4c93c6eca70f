/**
 * The per-job file tree gdb sees, built from resolved modules only:
 *
 *   <dir>/sysroot/<module path and its /usr aliases>  -> binary
 *   <dir>/solib/<basename>                            -> binary (solib-search-path)
 *   <dir>/debug/.build-id/xx/yyyy.debug               -> separate debug file
 *
 * gdb gets `set sysroot <dir>/sysroot`, so a library that is not in the tree
 * is "not found" instead of silently taken from this machine's / (the wrong
 * build, with plausible but wrong names). The solib directory catches the
 * names the dynamic loader used that are none of the module's paths (the
 * PT_INTERP path of ld.so, a symlinked library directory); a basename held by
 * two different modules is left out there rather than guessed.
 *
 * Cache files are hard-linked, so a concurrent eviction cannot pull them from
 * under a running gdb; other files are symlinked.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { confine, mkdirInside } from "../storage/workDir.js";
import { checkModulePath } from "./inventory.js";
import { pathAliases, type ResolvedModule } from "./resolve.js";

export interface SymbolTree {
  /** The executable's file for gdb's `file`, null when not found. */
  exe: string | null;
  sysroot: string;
  solibSearchPath: string[];
  debugFileDirectories: string[];
}

/**
 * Places `target` at `root`/`rel`. Every name comes from the core, so the
 * link is confined to `root`, its directories are created without following
 * a symlink, and it is created exclusively: nothing that exists is ever
 * removed or replaced. A name already placed (two aliases of one path, a
 * basename shared by two names) keeps its first file; returns false then.
 */
async function place(target: string, root: string, rel: string, hard: boolean, dirs: Set<string>): Promise<boolean> {
  const link = confine(root, rel);
  await mkdirInside(root, path.relative(root, path.dirname(link)), dirs);
  try {
    if (hard) {
      try {
        await fs.link(target, link);
        return true;
      } catch (e: unknown) {
        if ((e as NodeJS.ErrnoException).code === "EEXIST") throw e;
        // another file system (EXDEV) or no hard links: a symlink still works until eviction
      }
    }
    await fs.symlink(path.resolve(target), link);
    return true;
  } catch (e: unknown) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
}

/**
 * Builds the tree in the fresh directory `dir` (its parent is created if
 * needed; `dir` itself must not exist yet) and returns what to hand gdb.
 * Modules whose path is not a usable name (status `invalid`) are skipped.
 */
export async function assembleTree(modules: ResolvedModule[], dir: string): Promise<SymbolTree> {
  await fs.mkdir(path.dirname(dir), { recursive: true });
  await fs.mkdir(dir);
  const sysroot = path.join(dir, "sysroot");
  const solib = path.join(dir, "solib");
  const debugDir = path.join(dir, "debug");
  await Promise.all([sysroot, solib, debugDir].map((d) => fs.mkdir(d)));

  const found = modules.filter((m) => m.status === "found" && m.file !== null);
  // The loader knows a library by its DT_SONAME, usually a symlink beside the
  // real file (libstdc++.so.6 -> libstdc++.so.6.0.30): gdb asks for that name.
  // The path and the soname are checked again here: the tree is only ever
  // built from names that cannot leave it.
  const namesOf = (m: ResolvedModule) => {
    const names = [m.path];
    if (m.soname && !m.soname.includes("/") && m.soname !== path.basename(m.path)) names.push(path.join(path.dirname(m.path), m.soname));
    return names.flatMap((n) => {
      const c = checkModulePath(n);
      return "path" in c ? [c.path] : [];
    });
  };
  const byBase = new Map<string, Set<string>>();
  for (const m of found) {
    for (const n of namesOf(m)) {
      const base = path.basename(n);
      byBase.set(base, (byBase.get(base) ?? new Set()).add(m.build_id ?? m.file!));
    }
  }

  let exe: string | null = null;
  // The tree's directories made and checked so far (mkdirInside): libraries share most of theirs.
  const dirs = new Set<string>();
  for (const m of found) {
    const file = m.file!;
    if (m.executable) exe = file;
    for (const name of namesOf(m)) {
      for (const alias of pathAliases(name)) {
        if (!alias.startsWith("/")) continue;
        const placed = await place(file, sysroot, alias, m.cached, dirs);
        // Point gdb at the job's own link: a cache file may be evicted meanwhile.
        if (placed && m.executable && m.cached && alias === m.path) exe = confine(sysroot, alias);
      }
      const base = path.basename(name);
      if (!m.executable && byBase.get(base)?.size === 1) await place(file, solib, base, m.cached, dirs);
    }
    if (m.debug && m.build_id && /^[0-9a-f]{3,}$/.test(m.build_id)) {
      const id = m.build_id;
      await place(m.debug.file, debugDir, `.build-id/${id.slice(0, 2)}/${id.slice(2)}.debug`, m.debug.cached, dirs);
    }
  }
  return { exe, sysroot, solibSearchPath: [solib], debugFileDirectories: [debugDir] };
}
