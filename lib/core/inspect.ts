/**
 * Checks on a dump before gdb sees it: is it there, is it compressed, is it
 * an ELF core, for which architecture, and is it complete. Reads only the
 * first bytes, the ELF header and the program header table (never the
 * whole file), so a 20 GB core costs three small reads.
 *
 * A core whose program headers describe data past the end of the file is
 * `truncated` (the dump was cut: a full disk, a size limit, an interrupted
 * upload); gdb still gets a partial backtrace out of most such cores, so it
 * is reported, not refused. A core cut inside its header or program header
 * table is unusable: `truncated_core`.
 *
 * ELF parsing itself is lib/elf/file.ts; this module decides what is a
 * usable core and turns the answers into PermanentError codes.
 */
import { constants as fsConstants } from "node:fs";
import fs from "node:fs/promises";
import { PermanentError } from "../errors.js";
import {
  PN_XNUM,
  entrySizes,
  hasElfMagic,
  machineName,
  parseElfHeader,
  parseProgramHeaders,
  parseSectionHeader,
  programHeaderCount,
  type ElfHeader,
  type ProgramHeader,
} from "../elf/file.js";
import { detectCompression, type Compression } from "./compression.js";

export type ElfType = "none" | "rel" | "exec" | "dyn" | "core" | "other";

export interface CoreFileInfo {
  /** Size in bytes of the file as it is (compressed or not). */
  size: number;
  /** Compression detected by magic bytes; when set, the ELF fields are null (inspect the decompressed file). */
  compression: Compression | null;
  /** gdb/uname-style name from e_machine: x86_64, aarch64, ... */
  machine: string | null;
  class: 32 | 64 | null;
  endian: "little" | "big" | null;
  type: ElfType | null;
  /** Program headers point past the end of the file: the dump was cut. */
  truncated: boolean;
  /** The size the program headers call for (the end of the last segment's file data). */
  expectedSize: number | null;
}

const ELF_TYPES: Record<number, ElfType> = { 0: "none", 1: "rel", 2: "exec", 3: "dyn", 4: "core" };
/** A core with more program headers than this is not something gdb will read either. */
const MAX_PROGRAM_HEADERS = 4 * 1024 * 1024;

/**
 * Inspects a dump without reading it whole.
 *
 * @throws PermanentError with code file_not_found, empty_file, not_a_core
 *   (not ELF, or ELF but not ET_CORE), truncated_core (cut inside its headers)
 *   or invalid_input (a FIFO, socket or device; a symlink loop: refused before
 *   anything reads it, see openRegularFile).
 *   A compressed file is not an error: `compression` is set, the ELF fields null.
 */
export async function inspectCore(path: string): Promise<CoreFileInfo> {
  const fh = await openRegularFile(path, "core file");
  try {
    const st = await fh.stat();
    const size = st.size;
    if (size === 0) throw new PermanentError("empty_file", `core file is empty (0 bytes): ${path}`);
    const head = Buffer.alloc(64);
    const { bytesRead } = await fh.read(head, 0, 64, 0);
    const compression = detectCompression(head.subarray(0, bytesRead));
    if (compression) {
      return { size, compression, machine: null, class: null, endian: null, type: null, truncated: false, expectedSize: null };
    }
    if (!hasElfMagic(head.subarray(0, bytesRead))) {
      throw new PermanentError("not_a_core", `not an ELF core file (no ELF magic, starts with ${describeHead(head.subarray(0, Math.min(bytesRead, 8)))}): ${path}`);
    }
    const headerSize = entrySizes(head[4] !== 1).header;
    if (bytesRead < headerSize) throw new PermanentError("truncated_core", `core file is cut inside its ELF header (${size} bytes): ${path}`);
    let header: ElfHeader;
    try {
      header = parseElfHeader(head.subarray(0, bytesRead));
    } catch (e: unknown) {
      throw new PermanentError("not_a_core", `not a usable ELF file (${(e as Error).message}): ${path}`, { cause: e });
    }
    const type = ELF_TYPES[header.type] ?? "other";
    const info = {
      size,
      compression: null,
      machine: machineName(header.machine, header.is64, header.littleEndian),
      class: header.is64 ? (64 as const) : (32 as const),
      endian: header.littleEndian ? ("little" as const) : ("big" as const),
      type,
    };
    if (type !== "core") {
      const what = type === "exec" || type === "dyn" ? "an executable or shared library" : `an ELF ${type} file`;
      throw new PermanentError("not_a_core", `${path} is ${what} (e_type ${header.type}), not a core dump (ET_CORE)`);
    }
    const phdrs = await readProgramHeaders(fh, header, size, path);
    let expectedSize = 0;
    for (const ph of phdrs) expectedSize = Math.max(expectedSize, ph.offset + ph.filesz);
    return { ...info, truncated: expectedSize > size, expectedSize };
  } finally {
    await fh.close();
  }
}

/**
 * Opens an input file that must be a regular file, without blocking on what
 * is not one: O_NONBLOCK makes opening a FIFO return at once (a plain open
 * waits for a writer forever), and the opened handle, not the name, is
 * checked. Typed errors: file_not_found (missing, unreadable), not_a_core (a
 * directory), invalid_input (a FIFO, socket or device; a symlink loop).
 */
export async function openRegularFile(path: string, what: string): Promise<fs.FileHandle> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (e: unknown) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") throw new PermanentError("file_not_found", `${what} not found: ${path}`, { cause: e });
    if (code === "EACCES" || code === "EPERM") throw new PermanentError("file_not_found", `${what} not readable (permission denied): ${path}`, { cause: e });
    if (code === "ELOOP") throw new PermanentError("invalid_input", `${what} is a symlink loop: ${path}`, { cause: e });
    if (code === "ENXIO") throw new PermanentError("invalid_input", `${what} is a socket or a device without a reader, not a regular file: ${path}`, { cause: e });
    throw e;
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new PermanentError("not_a_core", `${path} is a directory, not a core file`);
    if (!st.isFile()) {
      const kind = st.isFIFO() ? "a FIFO" : st.isSocket() ? "a socket" : st.isCharacterDevice() || st.isBlockDevice() ? "a device" : "not a regular file";
      throw new PermanentError("invalid_input", `${what} ${path} is ${kind}, not a regular file`);
    }
  } catch (e: unknown) {
    await fh.close();
    throw e;
  }
  return fh;
}

async function readProgramHeaders(fh: fs.FileHandle, h: ElfHeader, size: number, path: string): Promise<ProgramHeader[]> {
  const sizes = entrySizes(h.is64);
  let section0 = null;
  if (h.phnum === PN_XNUM) {
    // Extended numbering: the count is section 0's sh_info.
    if (h.shoff === 0 || h.shoff + sizes.sectionHeader > size)
      throw new PermanentError("truncated_core", `core file is cut before its section header 0 (needed for its ${">"}65535 program headers): ${path}`);
    const s0 = Buffer.alloc(sizes.sectionHeader);
    await fh.read(s0, 0, sizes.sectionHeader, h.shoff);
    section0 = parseSectionHeader(s0, 0, h);
  }
  const phnum = programHeaderCount(h, section0);
  if (phnum === 0) throw new PermanentError("not_a_core", `core file has no program headers: ${path}`);
  if (h.phentsize < sizes.programHeader || phnum > MAX_PROGRAM_HEADERS)
    throw new PermanentError("not_a_core", `core file has a corrupt program header table (${phnum} × ${h.phentsize} bytes): ${path}`);
  const tableSize = phnum * h.phentsize;
  if (h.phoff + tableSize > size) {
    throw new PermanentError("truncated_core", `core file is cut inside its program header table (needs ${h.phoff + tableSize} bytes, has ${size}): ${path}`);
  }
  const buf = Buffer.alloc(tableSize);
  await fh.read(buf, 0, tableSize, h.phoff);
  return parseProgramHeaders(buf, h, phnum);
}

function describeHead(b: Buffer): string {
  const printable = /^[\x20-\x7e\t\r\n]*$/.test(b.toString("latin1"));
  return printable ? JSON.stringify(b.toString("latin1")) : `0x${b.toString("hex")}`;
}
