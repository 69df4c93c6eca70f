/**
 * The pure table parsers of lib/elf/file.ts on hand-made headers: a program
 * header table that lies about its entry size or count is read only as far
 * as whole entries fit, never past the buffer.
 */
import { describe, expect, test } from "@jest/globals";
import { PN_XNUM, PT_LOAD, entrySizes, hasElfMagic, parseProgramHeaders, programHeaderCount, type ElfHeader } from "../../../lib/elf/file.js";

const header = (over: Partial<ElfHeader> = {}): ElfHeader => ({
  is64: true,
  littleEndian: true,
  type: 4,
  machine: 62,
  phoff: 64,
  shoff: 0,
  phentsize: 56,
  phnum: 2,
  shentsize: 64,
  shnum: 0,
  shstrndx: 0,
  ...over,
});

function table(n: number): Buffer {
  const buf = Buffer.alloc(n * 56);
  for (let i = 0; i < n; i++) {
    buf.writeUInt32LE(PT_LOAD, i * 56);
    buf.writeBigUInt64LE(BigInt(0x1000 * (i + 1)), i * 56 + 16); // p_vaddr
  }
  return buf;
}

describe("parseProgramHeaders", () => {
  test("reads count entries", () => {
    expect(parseProgramHeaders(table(2), header(), 2).map((p) => p.vaddr)).toEqual([0x1000, 0x2000]);
  });
  test("a table shorter than its count gives only the whole entries", () => {
    expect(parseProgramHeaders(table(2).subarray(0, 56 + 10), header(), 2)).toHaveLength(1);
  });
  test("an entry size smaller than an entry gives none (no read past the buffer)", () => {
    expect(parseProgramHeaders(table(2), header({ phentsize: 1 }), 100)).toEqual([]);
    expect(parseProgramHeaders(table(2), header({ phentsize: 0 }), 100)).toEqual([]);
  });
});

describe("programHeaderCount", () => {
  test("e_phnum, or section 0's sh_info with extended numbering", () => {
    expect(programHeaderCount(header(), null)).toBe(2);
    const s0 = { nameOff: 0, type: 0, flags: 0, offset: 0, size: 0, link: 0, info: 70000 };
    expect(programHeaderCount(header({ phnum: PN_XNUM }), s0)).toBe(70000);
    expect(programHeaderCount(header({ phnum: PN_XNUM }), null)).toBe(0);
  });
});

test("entrySizes and hasElfMagic", () => {
  expect(entrySizes(true)).toEqual({ header: 64, programHeader: 56, sectionHeader: 64 });
  expect(entrySizes(false)).toEqual({ header: 52, programHeader: 32, sectionHeader: 40 });
  expect(hasElfMagic(Buffer.from("\x7fELF\x02", "latin1"))).toBe(true);
  expect(hasElfMagic(Buffer.from("\x7fEL", "latin1"))).toBe(false);
});
