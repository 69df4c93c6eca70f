/**
 * A minimal ELF reader for what symbol resolution needs: the header, program
 * and section headers, and notes. It reads only those byte ranges (never a
 * whole file), so a 10 GB core or a 2 GB debug file costs a few reads.
 *
 * Handles 32/64-bit, little/big endian, and extended numbering (PN_XNUM /
 * SHN_XINDEX-style counts in section 0), which cores with more than 65535
 * mappings use.
 */
import type { FileHandle } from "node:fs/promises";
import fs from "node:fs/promises";

export const ET_CORE = 4;
export const PT_LOAD = 1;
export const PT_NOTE = 4;
export const SHT_NOTE = 7;
export const SHT_NOBITS = 8;
export const SHF_EXECINSTR = 0x4;
/** e_phnum saying "more than fit here": the real count is section 0's sh_info (extended numbering). */
export const PN_XNUM = 0xffff;
/** "\x7fELF" read big-endian. */
const ELF_MAGIC = 0x7f454c46;

/** Reading more than this for one table or note segment means the file is corrupt. */
const MAX_TABLE_BYTES = 64 * 1024 * 1024;

export class NotElfError extends Error {
  override name = "NotElfError";
}

export interface ElfHeader {
  is64: boolean;
  littleEndian: boolean;
  type: number;
  machine: number;
  phoff: number;
  shoff: number;
  phentsize: number;
  phnum: number;
  shentsize: number;
  shnum: number;
  shstrndx: number;
}

export interface ProgramHeader {
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
  align: number;
}

export interface SectionHeader {
  name: string;
  type: number;
  flags: number;
  offset: number;
  size: number;
  link: number;
  info: number;
}

export interface Note {
  name: string;
  type: number;
  desc: Buffer;
}

/** Bytes of the ELF header and of one program and section header entry, by class. */
export function entrySizes(is64: boolean): { header: number; programHeader: number; sectionHeader: number } {
  return is64 ? { header: 64, programHeader: 56, sectionHeader: 64 } : { header: 52, programHeader: 32, sectionHeader: 40 };
}

/** `buf` starts with the ELF magic. */
export function hasElfMagic(buf: Buffer): boolean {
  return buf.length >= 4 && buf.readUInt32BE(0) === ELF_MAGIC;
}

/** Reads a word (4 or 8 bytes) as a JS number; addresses above 2^53 lose precision, which no real mapping reaches. */
export function readWord(buf: Buffer, off: number, is64: boolean, le: boolean): number {
  if (is64) return Number(le ? buf.readBigUInt64LE(off) : buf.readBigUInt64BE(off));
  return le ? buf.readUInt32LE(off) : buf.readUInt32BE(off);
}

/** Parses the ELF header from the file's first 64 bytes. Throws NotElfError for anything else. */
export function parseElfHeader(buf: Buffer): ElfHeader {
  if (buf.length < 52 || !hasElfMagic(buf)) throw new NotElfError("not an ELF file (bad magic)");
  const cls = buf[4];
  const data = buf[5];
  if (cls !== 1 && cls !== 2) throw new NotElfError(`not an ELF file (class ${cls})`);
  if (data !== 1 && data !== 2) throw new NotElfError(`not an ELF file (data encoding ${data})`);
  const is64 = cls === 2;
  const le = data === 1;
  if (is64 && buf.length < 64) throw new NotElfError("truncated ELF header");
  const u16 = (o: number) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const w = (o: number) => readWord(buf, o, is64, le);
  return is64
    ? {
        is64,
        littleEndian: le,
        type: u16(16),
        machine: u16(18),
        phoff: w(0x20),
        shoff: w(0x28),
        phentsize: u16(0x36),
        phnum: u16(0x38),
        shentsize: u16(0x3a),
        shnum: u16(0x3c),
        shstrndx: u16(0x3e),
      }
    : {
        is64,
        littleEndian: le,
        type: u16(16),
        machine: u16(18),
        phoff: w(0x1c),
        shoff: w(0x20),
        phentsize: u16(0x2a),
        phnum: u16(0x2c),
        shentsize: u16(0x2e),
        shnum: u16(0x30),
        shstrndx: u16(0x32),
      };
}

export function parseProgramHeader(buf: Buffer, off: number, h: ElfHeader): ProgramHeader {
  const le = h.littleEndian;
  const u32 = (o: number) => (le ? buf.readUInt32LE(off + o) : buf.readUInt32BE(off + o));
  const w = (o: number) => readWord(buf, off + o, h.is64, le);
  return h.is64
    ? { type: u32(0), flags: u32(4), offset: w(8), vaddr: w(16), filesz: w(32), memsz: w(40), align: w(48) }
    : { type: u32(0), offset: w(4), vaddr: w(8), filesz: w(16), memsz: w(20), flags: u32(24), align: w(28) };
}

/**
 * Parses up to `count` program headers from a table read at e_phoff; only
 * whole entries, and none when e_phentsize is smaller than an entry (a corrupt
 * or hostile header), so a short or lying table never reads past `buf`.
 */
export function parseProgramHeaders(buf: Buffer, h: ElfHeader, count: number): ProgramHeader[] {
  const out: ProgramHeader[] = [];
  if (h.phentsize < entrySizes(h.is64).programHeader) return out;
  for (let i = 0; i < count && (i + 1) * h.phentsize <= buf.length; i++) out.push(parseProgramHeader(buf, i * h.phentsize, h));
  return out;
}

/** A section header as stored: the name is an offset into the section name table. */
export type RawSectionHeader = ReturnType<typeof parseSectionHeader>;

export function parseSectionHeader(buf: Buffer, off: number, h: ElfHeader) {
  const le = h.littleEndian;
  const u32 = (o: number) => (le ? buf.readUInt32LE(off + o) : buf.readUInt32BE(off + o));
  const w = (o: number) => readWord(buf, off + o, h.is64, le);
  return h.is64
    ? { nameOff: u32(0), type: u32(4), flags: w(8), offset: w(24), size: w(32), link: u32(40), info: u32(44) }
    : { nameOff: u32(0), type: u32(4), flags: w(8), offset: w(16), size: w(20), link: u32(24), info: u32(28) };
}

/** The number of program headers: e_phnum, or with extended numbering section 0's sh_info (0 when section 0 is unreadable). */
export function programHeaderCount(h: ElfHeader, section0: RawSectionHeader | null): number {
  return h.phnum === PN_XNUM ? (section0?.info ?? 0) : h.phnum;
}

/**
 * Splits a note segment or section into notes. `align` is 4 for classic
 * notes and 8 for PT_NOTE segments aligned to 8 (.note.gnu.property).
 */
export function parseNotes(buf: Buffer, littleEndian: boolean, align = 4): Note[] {
  const notes: Note[] = [];
  const a = align === 8 ? 8 : 4;
  const pad = (n: number) => (n + a - 1) & ~(a - 1);
  let off = 0;
  while (off + 12 <= buf.length) {
    const u32 = (o: number) => (littleEndian ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
    const namesz = u32(off);
    const descsz = u32(off + 4);
    const type = u32(off + 8);
    const nameStart = off + 12;
    const descStart = nameStart + pad(namesz);
    if (descStart + descsz > buf.length) break; // truncated: keep what parsed cleanly
    const name = buf
      .subarray(nameStart, nameStart + namesz)
      .toString("latin1")
      .replace(/\0+$/, "");
    notes.push({ name, type, desc: buf.subarray(descStart, descStart + descsz) });
    off = descStart + pad(descsz);
  }
  return notes;
}

/** An open ELF file: headers parsed lazily, reads bounded to what is asked for. */
export class ElfFile {
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly header: ElfHeader,
    readonly size: number,
  ) {}

  /** Opens `path` and parses its header; throws NotElfError when it is not ELF. */
  static async open(path: string): Promise<ElfFile> {
    const fh = await fs.open(path, "r");
    try {
      const st = await fh.stat();
      const head = Buffer.alloc(64);
      const { bytesRead } = await fh.read(head, 0, 64, 0);
      const header = parseElfHeader(head.subarray(0, bytesRead));
      return new ElfFile(path, fh, header, st.size);
    } catch (e: unknown) {
      await fh.close();
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.fh.close();
  }

  /** Reads `length` bytes at `offset`; short at end of file. */
  async read(offset: number, length: number): Promise<Buffer> {
    if (length > MAX_TABLE_BYTES) throw new NotElfError(`${this.path}: refusing to read ${length} bytes of headers`);
    const buf = Buffer.alloc(Math.max(0, Math.min(length, this.size - offset)));
    if (buf.length === 0) return buf;
    const { bytesRead } = await this.fh.read(buf, 0, buf.length, offset);
    return buf.subarray(0, bytesRead);
  }

  private section0: RawSectionHeader | null | undefined;

  /** Section 0 carries the real counts when they overflow the header (extended numbering). */
  private async firstSection() {
    if (this.section0 !== undefined) return this.section0;
    const h = this.header;
    if (h.shoff === 0 || h.shentsize === 0) return (this.section0 = null);
    const buf = await this.read(h.shoff, h.shentsize);
    this.section0 = buf.length === h.shentsize ? parseSectionHeader(buf, 0, h) : null;
    return this.section0;
  }

  async programHeaders(): Promise<ProgramHeader[]> {
    const h = this.header;
    const phnum = programHeaderCount(h, h.phnum === PN_XNUM ? await this.firstSection() : null);
    if (h.phoff === 0 || phnum === 0 || h.phentsize === 0) return [];
    return parseProgramHeaders(await this.read(h.phoff, phnum * h.phentsize), h, phnum);
  }

  async sectionHeaders(): Promise<SectionHeader[]> {
    const h = this.header;
    if (h.shoff === 0 || h.shentsize === 0) return [];
    let shnum = h.shnum;
    let shstrndx = h.shstrndx;
    if (shnum === 0 || shstrndx === 0xffff) {
      const s0 = await this.firstSection();
      if (shnum === 0) shnum = s0?.size ?? 0;
      if (shstrndx === 0xffff) shstrndx = s0?.link ?? 0;
    }
    if (shnum === 0) return [];
    const buf = await this.read(h.shoff, shnum * h.shentsize);
    const raw = [];
    for (let i = 0; (i + 1) * h.shentsize <= buf.length; i++) raw.push(parseSectionHeader(buf, i * h.shentsize, h));
    const strtab = raw[shstrndx];
    const names = strtab && strtab.type !== SHT_NOBITS ? await this.read(strtab.offset, strtab.size) : Buffer.alloc(0);
    return raw.map((s) => {
      const end = names.indexOf(0, s.nameOff);
      const name = s.nameOff < names.length ? names.toString("latin1", s.nameOff, end === -1 ? names.length : end) : "";
      return { name, type: s.type, flags: s.flags, offset: s.offset, size: s.size, link: s.link, info: s.info };
    });
  }

  /** Notes from PT_NOTE segments (what a core and a loaded module carry). */
  async segmentNotes(phdrs?: ProgramHeader[]): Promise<Note[]> {
    const notes: Note[] = [];
    for (const ph of phdrs ?? (await this.programHeaders())) {
      if (ph.type !== PT_NOTE || ph.filesz === 0) continue;
      notes.push(...parseNotes(await this.read(ph.offset, ph.filesz), this.header.littleEndian, ph.align));
    }
    return notes;
  }

  /** Notes from SHT_NOTE sections (what a separate .debug file keeps). */
  async sectionNotes(sections?: SectionHeader[]): Promise<Note[]> {
    const notes: Note[] = [];
    for (const s of sections ?? (await this.sectionHeaders())) {
      if (s.type !== SHT_NOTE || s.size === 0) continue;
      notes.push(...parseNotes(await this.read(s.offset, s.size), this.header.littleEndian, 4));
    }
    return notes;
  }
}

const MACHINES: Record<number, string> = {
  3: "i386",
  8: "mips",
  20: "powerpc",
  21: "ppc64",
  22: "s390x",
  40: "arm",
  62: "x86_64",
  183: "aarch64",
  243: "riscv",
  258: "loongarch64",
};

/** gdb/uname-style architecture name for an ELF e_machine. */
export function machineName(machine: number, is64: boolean, littleEndian: boolean): string {
  const name = MACHINES[machine];
  if (name === undefined) return `em_${machine}`;
  if (name === "ppc64" && littleEndian) return "ppc64le";
  if (name === "riscv") return is64 ? "riscv64" : "riscv32";
  if (name === "mips" && is64) return "mips64";
  return name;
}
