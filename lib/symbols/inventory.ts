/**
 * The inventory of a core, from the core alone: every mapped module with the
 * build-id the core recorded for it, the executable and the command line.
 *
 * Sources: the modules and build-ids from the ELF headers and build-id notes
 * in the core's own memory (lib/elf/coreModules.ts, no process), or from
 * eu-unstrip where those do not suffice (it also follows the dynamic linker's
 * list and this machine's files), the core's NT_FILE for the
 * true mapped paths inside the container (eu-unstrip prints link_map names,
 * often bare sonames), NT_AUXV to tell which mapping is the executable, and
 * NT_PRPSINFO for the command line.
 */
import { readCoreNotes, AT_ENTRY, AT_PHDR, AT_SYSINFO_EHDR, type CoreNotes, type FileMapping } from "../elf/coreNotes.js";
import { modulesFromCoreMemory } from "../elf/coreModules.js";
import { listCoreModules, type UnstripModule } from "./unstrip.js";

export interface InventoryModule {
  /** Path inside the crashed process's file system (its container). */
  path: string;
  build_id: string | null;
  /** 0x-hex, as in the result's `modules`. */
  start: string | null;
  end: string | null;
  /** This module is the main executable. */
  executable: boolean;
  /**
   * Why the core's path for this module is refused as a name (`..`, NUL,
   * control characters): such a module is reported, never looked up or
   * placed in the job's tree. Absent for a usable path.
   */
  invalid?: string;
}

export interface Inventory {
  modules: InventoryModule[];
  executable: string | null;
  commandLine: string | null;
  /** Core's architecture ("x86_64", "aarch64", …). */
  machine: string;
}

const hex = (n: number) => `0x${n.toString(16)}`;
const VDSO_NAMES = new Set(["linux-vdso.so.1", "linux-gate.so.1", "linux-vdso64.so.1", "linux-vdso32.so.1", "[vdso]"]);

/** Strips what the kernel appends to a replaced or removed mapped file. */
function cleanPath(p: string): string {
  return p.replace(/ \(deleted\)$/, "");
}

/**
 * A module path from a core is data the crashed process (or whoever wrote the
 * core) chose, not path syntax: repeated slashes are folded, but a `.` or `..`
 * component, a NUL or any control character makes it unusable (it could name a
 * file outside the job's tree, or break a gdb command line). Returns the
 * normalized path, or the reason it is refused.
 */
export function checkModulePath(p: string): { path: string } | { invalid: string } {
  if (/[\u0000-\u001f\u007f]/.test(p)) return { invalid: `module path contains a control character: ${JSON.stringify(p)}` };
  // argv[0] as typed (`./server`) is the one relative form a core names: kept as it is.
  const lead = p.startsWith("./") ? "./" : "";
  const parts = p.slice(lead.length).split("/");
  if (parts.some((x) => x === "." || x === "..")) return { invalid: `module path has a "." or ".." component: ${JSON.stringify(p)}` };
  const rest = parts.filter(Boolean).join("/");
  if (rest === "") return { invalid: `module path names no file: ${JSON.stringify(p)}` };
  return { path: p.startsWith("/") ? `/${rest}` : `${lead}${rest}` };
}

function mappingAt(mappings: FileMapping[], addr: number): FileMapping | undefined {
  return mappings.find((m) => addr >= m.start && addr < m.end);
}

/**
 * Combines the module list (read from the core's memory or eu-unstrip's) with the core's notes. Pure: all I/O is in
 * `inventoryCore`. The vDSO is left out: the kernel provides it and the core
 * always contains it, so there is nothing to resolve.
 */
export function buildInventory(unstrip: UnstripModule[], notes: CoreNotes): Inventory {
  const phdr = notes.auxv.get(AT_PHDR) ?? notes.auxv.get(AT_ENTRY);
  const vdso = notes.auxv.get(AT_SYSINFO_EHDR);
  const exeMapping = phdr !== undefined ? mappingAt(notes.mappings, phdr) : undefined;
  let executable: string | null = exeMapping ? cleanPath(exeMapping.path) : null;
  executable ??= notes.execfn ?? notes.psargs?.split(/\s+/)[0] ?? notes.fname ?? null;

  const modules: InventoryModule[] = [];
  for (const u of unstrip) {
    if (VDSO_NAMES.has(u.name) || (vdso !== undefined && u.start === vdso)) continue;
    // The mapping at the module's load address is its first segment; its path is the real one.
    const m = mappingAt(notes.mappings, u.start);
    const path = m ? cleanPath(m.path) : u.name.startsWith("/") ? u.name : (u.file ?? u.name);
    const isExe = phdr !== undefined ? phdr >= u.start && phdr < u.end : path === executable;
    modules.push(withCheckedPath({ path, build_id: u.buildId, start: hex(u.start), end: hex(u.end), executable: isExe }));
  }
  if (!modules.some((m) => m.executable) && executable !== null) {
    // elfutils recognized no executable (e.g. a qemu-user core without its text
    // pages): still list it, with what the notes tell, so it can be resolved by path.
    const maps = notes.mappings.filter((m) => cleanPath(m.path) === executable);
    const start = maps.length ? Math.min(...maps.map((m) => m.start)) : null;
    const end = maps.length ? Math.max(...maps.map((m) => m.end)) : null;
    modules.unshift(withCheckedPath({ path: executable, build_id: null, start: start === null ? null : hex(start), end: end === null ? null : hex(end), executable: true }));
  }
  modules.sort((a, b) => Number(b.executable) - Number(a.executable));
  return { modules, executable, commandLine: notes.psargs, machine: notes.machine };
}

/** The module with its path normalized, or marked `invalid` (its path kept as the core gave it, for the report). */
function withCheckedPath(m: InventoryModule): InventoryModule {
  const c = checkModulePath(m.path);
  return "path" in c ? { ...m, path: c.path } : { ...m, invalid: c.invalid };
}

/**
 * Inventories a core: modules (path, build-id, address range), the
 * executable's path and the command line. Throws NotElfError for a file that
 * is not an ELF core and UnstripError when eu-unstrip is needed and cannot run.
 */
export async function inventoryCore(core: string, opts: { unstripPath?: string; signal?: AbortSignal; notes?: CoreNotes } = {}): Promise<Inventory> {
  // The notes are read once per analysis: the caller passes them when it has them.
  const notes = opts.notes ?? (await readCoreNotes(core));
  const unstrip = (await modulesFromCoreMemory(core, notes)) ?? (await listCoreModules(core, opts));
  return buildInventory(unstrip, notes);
}

/** The module whose address range holds `address` (0x-hex or number). */
export function moduleAt<T extends { start: string | null; end: string | null }>(modules: T[], address: string | number): T | undefined {
  const a = typeof address === "number" ? BigInt(address) : BigInt(address);
  return modules.find((m) => m.start !== null && m.end !== null && a >= BigInt(m.start) && a < BigInt(m.end));
}
