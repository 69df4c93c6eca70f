/**
 * The modules of a core from the core alone, without a second process: the
 * kernel dumps the first page of every mapped ELF file (coredump_filter bit 4,
 * on by default), and that page holds the ELF header, the program headers and,
 * in every linker's default layout, the build-id note. So for each file the
 * core's NT_FILE note maps from offset 0 we read those from the core's own
 * memory, the same bytes `eu-unstrip -n --core` reads, and spare each job the
 * eu-unstrip spawn (tens of ms of a worker's busy time per core).
 *
 * It answers only when the notes suffice; otherwise `null`, and the caller
 * asks eu-unstrip (lib/symbols/unstrip.ts), which also finds modules through
 * the dynamic linker's list and files on this machine:
 *  - no NT_FILE note (old kernels, some core writers),
 *  - no module whose first page is in the core (a coredump_filter without the
 *    ELF-header bit, qemu-user cores that dump no read-only pages),
 *  - a module whose header page is there but whose build-id note is not.
 *
 * Address ranges: start is where the file's offset 0 is mapped, end the end
 * of its last PT_LOAD segment rounded up to the page, as eu-unstrip reports a
 * module it rebuilt from the core's memory.
 */
import { buildIdOf } from "./buildId.js";
import { CoreMemory } from "./coreMemory.js";
import { ElfFile, PN_XNUM, PT_LOAD, PT_NOTE, hasElfMagic, parseElfHeader, parseNotes, parseProgramHeaders } from "./file.js";
import type { CoreNotes } from "./coreNotes.js";

const ET_EXEC = 2;
const ET_DYN = 3;
const PAGE = 4096;

/**
 * A module found in the core's memory: the shape of one `eu-unstrip -n` line
 * (lib/symbols/unstrip.ts's CoreModule), with no file found on this machine.
 */
export interface CoreModule {
  start: number;
  end: number;
  buildId: string;
  buildIdAddress: number | null;
  file: null;
  debugFile: null;
  name: string;
}

/** One module from the ELF image mapped at `start`; undefined when it is not an ELF image, null when it is but cannot be read fully. */
async function moduleAt(mem: CoreMemory, start: number, name: string): Promise<CoreModule | undefined | null> {
  const head = await mem.read(start, 64);
  if (!head || !hasElfMagic(head)) return undefined;
  let h;
  try {
    h = parseElfHeader(head);
  } catch {
    return undefined;
  }
  if (h.type !== ET_EXEC && h.type !== ET_DYN) return undefined;
  if (h.phnum === 0 || h.phnum === PN_XNUM || h.phentsize === 0) return null;
  const table = await mem.read(start + h.phoff, h.phnum * h.phentsize);
  if (!table) return null;
  const phdrs = parseProgramHeaders(table, h, h.phnum);
  const loads = phdrs.filter((p) => p.type === PT_LOAD);
  const first = loads[0];
  if (!first) return null;
  // The file's offset 0 is at `start`; the first segment maps it (p_vaddr - p_offset is the image's link base).
  const bias = start - (first.vaddr - first.offset);
  let buildId: string | null = null;
  let buildIdAddress: number | null = null;
  for (const ph of phdrs) {
    if (ph.type !== PT_NOTE || ph.filesz === 0) continue;
    const bytes = await mem.read(bias + ph.vaddr, ph.filesz);
    if (!bytes) return null;
    const id = buildIdOf(parseNotes(bytes, h.littleEndian, ph.align));
    if (id) {
      buildId = id;
      buildIdAddress = bias + ph.vaddr;
      break;
    }
  }
  if (buildId === null) return null;
  const last = Math.max(...loads.map((p) => p.vaddr + p.memsz));
  const end = Math.ceil((bias + last) / PAGE) * PAGE;
  return { start, end, buildId, buildIdAddress, file: null, debugFile: null, name };
}

/**
 * The core's modules read from its own memory, in address order, or null when
 * the notes do not suffice (see the module comment) and eu-unstrip must answer.
 */
export async function modulesFromCoreMemory(core: string, notes: CoreNotes): Promise<CoreModule[] | null> {
  const starts = notes.mappings.filter((m) => m.offset === 0);
  if (starts.length === 0) return null;
  const elf = await ElfFile.open(core);
  try {
    const mem = new CoreMemory(elf, await elf.programHeaders());
    const out: CoreModule[] = [];
    for (const m of starts) {
      const mod = await moduleAt(mem, m.start, m.path);
      if (mod === null) return null;
      if (mod) out.push(mod);
    }
    return out.length > 0 ? out.sort((a, b) => a.start - b.start) : null;
  } finally {
    await elf.close();
  }
}
