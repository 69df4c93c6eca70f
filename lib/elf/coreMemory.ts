/**
 * The crashed process's memory as a core holds it: the file data of its
 * PT_LOAD segments, addressed by virtual address. What was not dumped (a
 * segment with p_filesz 0, a page coredump_filter left out) reads as null,
 * never as zeros, so a caller can tell "not in the core" from data.
 */
import { PT_LOAD, type ElfFile, type ProgramHeader } from "./file.js";

/** Reads larger than this are not a header page or a note: refused (null), the core may be hostile. */
const MAX_READ = 64 * 1024;

export class CoreMemory {
  private readonly loads: ProgramHeader[];
  constructor(
    private readonly elf: ElfFile,
    phdrs: ProgramHeader[],
  ) {
    this.loads = phdrs.filter((p) => p.type === PT_LOAD && p.filesz > 0);
  }

  /** Exactly `length` bytes at `addr`, from one segment; null when they were not all dumped. */
  async read(addr: number, length: number): Promise<Buffer | null> {
    if (length <= 0 || length > MAX_READ) return null;
    const seg = this.loads.find((p) => addr >= p.vaddr && addr + length <= p.vaddr + p.filesz);
    if (!seg) return null;
    const buf = await this.elf.read(seg.offset + (addr - seg.vaddr), length);
    return buf.length === length ? buf : null;
  }

  /** The NUL-terminated string at `addr` (at most `max` bytes, within its segment); null when not dumped or empty. */
  async readCString(addr: number, max = 4096): Promise<string | null> {
    const seg = this.loads.find((p) => addr >= p.vaddr && addr < p.vaddr + p.filesz);
    if (!seg) return null;
    const buf = await this.elf.read(seg.offset + (addr - seg.vaddr), Math.min(max, seg.vaddr + seg.filesz - addr));
    const nul = buf.indexOf(0);
    if (nul <= 0) return null;
    return buf.toString("utf8", 0, nul);
  }
}
