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
import { pathAliases, type ResolvedModule } from "./resolve.js";

export interface SymbolTree {
  /** The executable's file for gdb's `file`, null when not found. */
  exe: string | null;
  sysroot: string;
  solibSearchPath: string[];
  debugFileDirectories: string[];
}

async function place(target: string, link: string, hard: boolean): Promise<void> {
  await fs.mkdir(path.dirname(link), { recursive: true });
  await fs.rm(link, { force: true });
  if (hard) {
    try {
      await fs.link(target, link);
      return;
    } catch {
      // another file system (EXDEV) or no hard links: a symlink still works until eviction
    }
  }
  await fs.symlink(path.resolve(target), link);
}

/** Builds the tree under `dir` (created if needed) and returns what to hand gdb. */
export async function assembleTree(modules: ResolvedModule[], dir: string): Promise<SymbolTree> {
  const sysroot = path.join(dir, "sysroot");
  const solib = path.join(dir, "solib");
  const debugDir = path.join(dir, "debug");
  await Promise.all([sysroot, solib, debugDir].map((d) => fs.mkdir(d, { recursive: true })));

  const found = modules.filter((m) => m.status === "found" && m.file !== null);
  // The loader knows a library by its DT_SONAME, usually a symlink beside the
  // real file (libstdc++.so.6 -> libstdc++.so.6.0.30): gdb asks for that name.
  const namesOf = (m: ResolvedModule) => {
    const names = [m.path];
    if (m.soname && !m.soname.includes("/") && m.soname !== path.basename(m.path)) names.push(path.join(path.dirname(m.path), m.soname));
    return names;
  };
  const byBase = new Map<string, Set<string>>();
  for (const m of found) {
    for (const n of namesOf(m)) {
      const base = path.basename(n);
      byBase.set(base, (byBase.get(base) ?? new Set()).add(m.build_id ?? m.file!));
    }
  }

  let exe: string | null = null;
  for (const m of found) {
    const file = m.file!;
    if (m.executable) exe = file;
    for (const name of namesOf(m)) {
      for (const alias of pathAliases(name)) {
        if (!alias.startsWith("/")) continue;
        const link = path.join(sysroot, alias);
        await place(file, link, m.cached);
        // Point gdb at the job's own link: a cache file may be evicted meanwhile.
        if (m.executable && m.cached && alias === m.path) exe = link;
      }
      const base = path.basename(name);
      if (!m.executable && byBase.get(base)?.size === 1) await place(file, path.join(solib, base), m.cached);
    }
    if (m.debug && m.build_id) {
      const id = m.build_id;
      await place(m.debug.file, path.join(debugDir, ".build-id", id.slice(0, 2), `${id.slice(2)}.debug`), m.debug.cached);
    }
  }
  return { exe, sysroot, solibSearchPath: [solib], debugFileDirectories: [debugDir] };
}
