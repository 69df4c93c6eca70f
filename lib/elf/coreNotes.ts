/**
 * What a core says about its process, from its notes: the mapped files
 * (NT_FILE: the paths *inside the crashed container*), the process name and
 * arguments (NT_PRPSINFO), the auxiliary vector (NT_AUXV: where the
 * executable's program headers were mapped) and the architecture (e_machine).
 *
 * Parsers are pure functions over the note bytes; `readCoreNotes` does the I/O.
 */
import { CoreMemory } from "./coreMemory.js";
import { ET_CORE, ElfFile, NotElfError, machineName, readWord } from "./file.js";

export const NT_PRSTATUS = 1;
export const NT_PRPSINFO = 3;
export const NT_AUXV = 6;
export const NT_FILE = 0x46494c45;

export const AT_PHDR = 3;
export const AT_ENTRY = 9;
export const AT_EXECFN = 31;
export const AT_SYSINFO_EHDR = 33;

export interface FileMapping {
  start: number;
  end: number;
  /** Offset in the file, in bytes. */
  offset: number;
  path: string;
}

export interface CoreNotes {
  machine: string;
  is64: boolean;
  littleEndian: boolean;
  mappings: FileMapping[];
  /** Short command name (16 bytes at most, truncated by the kernel). */
  fname: string | null;
  /** Command line, space-joined, truncated by the kernel to 80 bytes. */
  psargs: string | null;
  /** The crashed process's pid (pr_pid): a signal whose si_pid is this one was sent by the process itself. */
  pid: number | null;
  auxv: Map<number, number>;
  /** The path the process was executed as (AT_EXECFN), when the stack page is in the core. */
  execfn: string | null;
  /**
   * The fatal signal's number: `si_signo` of the first NT_PRSTATUS, which the
   * kernel writes for the thread that took the signal (lib/dedup/ keys on it).
   */
  signo: number | null;
}

/** Parses NT_FILE: count, page size, count × (start, end, page offset), then count NUL-terminated paths. */
export function parseNtFile(desc: Buffer, is64: boolean, le: boolean): FileMapping[] {
  const ws = is64 ? 8 : 4;
  if (desc.length < 2 * ws) return [];
  const count = readWord(desc, 0, is64, le);
  const pageSize = readWord(desc, ws, is64, le);
  const tableEnd = 2 * ws + count * 3 * ws;
  if (tableEnd > desc.length) return [];
  const out: FileMapping[] = [];
  let strOff = tableEnd;
  for (let i = 0; i < count; i++) {
    const base = 2 * ws + i * 3 * ws;
    const nul = desc.indexOf(0, strOff);
    const end = nul === -1 ? desc.length : nul;
    out.push({
      start: readWord(desc, base, is64, le),
      end: readWord(desc, base + ws, is64, le),
      offset: readWord(desc, base + 2 * ws, is64, le) * pageSize,
      path: desc.toString("utf8", strOff, end),
    });
    strOff = end + 1;
  }
  return out;
}

/**
 * Parses NT_PRPSINFO. Its layout differs per architecture before the two
 * strings, but `pr_fname[16]` and `pr_psargs[80]` always end the struct, and
 * the four 32-bit `pr_pid, pr_ppid, pr_pgrp, pr_sid` come right before them.
 */
export function parsePrpsinfo(desc: Buffer, le = true): { fname: string | null; psargs: string | null; pid: number | null } {
  if (desc.length < 96) return { fname: null, psargs: null, pid: null };
  const str = (b: Buffer) => {
    const nul = b.indexOf(0);
    const s = b.toString("utf8", 0, nul === -1 ? b.length : nul).trim();
    return s.length > 0 ? s : null;
  };
  const base = desc.length - 96;
  const pid = base >= 16 ? (le ? desc.readInt32LE(base - 16) : desc.readInt32BE(base - 16)) : null;
  return { fname: str(desc.subarray(base, base + 16)), psargs: str(desc.subarray(base + 16)), pid: pid !== null && pid > 0 ? pid : null };
}

export function parseAuxv(desc: Buffer, is64: boolean, le: boolean): Map<number, number> {
  const ws = is64 ? 8 : 4;
  const out = new Map<number, number>();
  for (let off = 0; off + 2 * ws <= desc.length; off += 2 * ws) {
    const key = readWord(desc, off, is64, le);
    if (key === 0) break;
    out.set(key, readWord(desc, off + ws, is64, le));
  }
  return out;
}

/** Reads a core's notes. Throws NotElfError when the file is not an ELF core. */
export async function readCoreNotes(core: string): Promise<CoreNotes> {
  const elf = await ElfFile.open(core);
  try {
    const h = elf.header;
    if (h.type !== ET_CORE) throw new NotElfError(`${core}: an ELF file but not a core (e_type ${h.type})`);
    const phdrs = await elf.programHeaders();
    const notes = (await elf.segmentNotes(phdrs)).filter((n) => n.name === "CORE" || n.name === "LINUX");
    const fileNote = notes.find((n) => n.type === NT_FILE);
    const ps = notes.find((n) => n.type === NT_PRPSINFO);
    const av = notes.find((n) => n.type === NT_AUXV);
    const status = notes.find((n) => n.name === "CORE" && n.type === NT_PRSTATUS);
    const auxv = av ? parseAuxv(av.desc, h.is64, h.littleEndian) : new Map<number, number>();
    const execfnAddr = auxv.get(AT_EXECFN);
    return {
      machine: machineName(h.machine, h.is64, h.littleEndian),
      is64: h.is64,
      littleEndian: h.littleEndian,
      mappings: fileNote ? parseNtFile(fileNote.desc, h.is64, h.littleEndian) : [],
      ...(ps ? parsePrpsinfo(ps.desc, h.littleEndian) : { fname: null, psargs: null, pid: null }),
      auxv,
      execfn: execfnAddr ? await new CoreMemory(elf, phdrs).readCString(execfnAddr) : null,
      // elf_siginfo { si_signo, si_code, si_errno } opens prstatus on every architecture.
      signo: status && status.desc.length >= 4 ? (h.littleEndian ? status.desc.readInt32LE(0) : status.desc.readInt32BE(0)) || null : null,
    };
  } finally {
    await elf.close();
  }
}
