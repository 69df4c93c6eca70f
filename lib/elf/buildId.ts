/**
 * Build-ids and what an ELF file carries (code, DWARF, a symbol table), read
 * from headers and notes only. The build-id is the identity every symbol
 * source is keyed by: a file is used for a module only when they match.
 */
import { ElfFile, NotElfError, PT_LOAD, SHF_EXECINSTR, SHT_NOBITS, machineName, readWord, type Note } from "./file.js";

export const NT_GNU_BUILD_ID = 3;

/** The GNU build-id among `notes`, as lowercase hex, or null. */
export function buildIdOf(notes: Note[]): string | null {
  const n = notes.find((x) => x.name === "GNU" && x.type === NT_GNU_BUILD_ID && x.desc.length > 0);
  return n ? n.desc.toString("hex") : null;
}

export interface ElfDescription {
  path: string;
  buildId: string | null;
  /** e_type: 1 rel, 2 exec, 3 dyn, 4 core. */
  type: number;
  machine: string;
  /** Machine code is present (not NOBITS): usable as the module's file. */
  hasCode: boolean;
  /** `.debug_info` (or `.zdebug_info`) with contents: usable as debug info. */
  hasDebugInfo: boolean;
  /** `.symtab` with contents: full function names even without DWARF. */
  hasSymtab: boolean;
  /** DT_SONAME of a shared library: the name the dynamic loader looks it up by (often a symlink). */
  soname: string | null;
  /** The file name in `.gnu_debuglink`: where a separate debug file may be found beside it or under /usr/lib/debug. */
  debuglink: string | null;
  size: number;
}

/** The name `.gnu_debuglink` holds (NUL-terminated, then a CRC gdb checks itself). */
async function debuglinkOf(elf: ElfFile, sections: Awaited<ReturnType<ElfFile["sectionHeaders"]>>): Promise<string | null> {
  const s = sections.find((x) => x.name === ".gnu_debuglink" && x.type !== SHT_NOBITS);
  if (!s || s.size === 0) return null;
  const buf = await elf.read(s.offset, Math.min(s.size, 4096));
  const nul = buf.indexOf(0);
  const name = buf.toString("utf8", 0, nul === -1 ? buf.length : nul);
  // A file name only: anything with a slash or dots-only is not a name gdb would look up beside the binary.
  return name && !name.includes("/") && name !== "." && name !== ".." ? name : null;
}

const SHT_DYNAMIC = 6;
const DT_SONAME = 14;

/** DT_SONAME from the `.dynamic` section and the string table it links to. */
async function sonameOf(elf: ElfFile, sections: Awaited<ReturnType<ElfFile["sectionHeaders"]>>): Promise<string | null> {
  const dyn = sections.find((s) => s.type === SHT_DYNAMIC);
  const strtab = dyn ? sections[dyn.link] : undefined;
  if (!dyn || !strtab || strtab.type === SHT_NOBITS) return null;
  const { is64, littleEndian } = elf.header;
  const ws = is64 ? 8 : 4;
  const buf = await elf.read(dyn.offset, Math.min(dyn.size, 64 * 1024));
  for (let off = 0; off + 2 * ws <= buf.length; off += 2 * ws) {
    const tag = readWord(buf, off, is64, littleEndian);
    if (tag === 0) break;
    if (tag !== DT_SONAME) continue;
    const at = readWord(buf, off + ws, is64, littleEndian);
    if (at >= strtab.size) return null;
    const str = await elf.read(strtab.offset + at, Math.min(256, strtab.size - at));
    const nul = str.indexOf(0);
    return str.toString("utf8", 0, nul === -1 ? str.length : nul) || null;
  }
  return null;
}

/** Describes an ELF file. Throws NotElfError for anything that is not ELF, and fs errors as they come. */
export async function describeElf(path: string): Promise<ElfDescription> {
  const elf = await ElfFile.open(path);
  try {
    const sections = await elf.sectionHeaders();
    const phdrs = await elf.programHeaders();
    const buildId = buildIdOf(await elf.sectionNotes(sections)) ?? buildIdOf(await elf.segmentNotes(phdrs));
    const has = (name: string) => sections.some((s) => s.name === name && s.type !== SHT_NOBITS && s.size > 0);
    const hasCode =
      sections.length > 0
        ? sections.some((s) => (s.flags & SHF_EXECINSTR) !== 0 && s.type !== SHT_NOBITS && s.size > 0)
        : // Section headers stripped (sstrip): trust an executable, file-backed segment.
          phdrs.some((p) => p.type === PT_LOAD && (p.flags & 1) !== 0 && p.filesz > 0);
    const h = elf.header;
    return {
      path,
      buildId,
      type: h.type,
      machine: machineName(h.machine, h.is64, h.littleEndian),
      hasCode,
      hasDebugInfo: has(".debug_info") || has(".zdebug_info"),
      hasSymtab: has(".symtab"),
      soname: await sonameOf(elf, sections),
      debuglink: await debuglinkOf(elf, sections),
      size: elf.size,
    };
  } finally {
    await elf.close();
  }
}

/**
 * The NT_GNU_BUILD_ID of the file at `path` as lowercase hex; null when the
 * file has none, is not ELF, or cannot be read (a candidate we cannot
 * identify is never used).
 */
export async function readBuildId(path: string): Promise<string | null> {
  try {
    return (await describeElf(path)).buildId;
  } catch (e: unknown) {
    if (e instanceof NotElfError) return null;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EACCES" || code === "EISDIR" || code === "ENOTDIR" || code === "ELOOP") return null;
    throw e;
  }
}
