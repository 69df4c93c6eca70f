import { afterAll, describe, expect, it } from "@jest/globals";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bufferSource, fileSource, type TextSource } from "../../../lib/gdb/textSource.js";

async function linesOf(source: TextSource): Promise<{ lines: Array<[string, number]>; size: number }> {
  const lines: Array<[string, number]> = [];
  const size = await source.lines((l, o) => lines.push([l, o]));
  return { lines, size };
}

/** What parseBacktrace splits a string into, with byte offsets. */
function expected(text: string): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  let offset = 0;
  for (const line of text.split("\n")) {
    out.push([line, offset]);
    offset += Buffer.byteLength(line) + 1;
  }
  return out;
}

describe("textSource", () => {
  const dir = mkdtempSync(join(tmpdir(), "csw-textsource-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const texts = ["", "\n", "one", "one\n", "a\n\nb\r\nc", 'ünïcødé → 文字\n#0  0x1 in f (s=0x2 "€") at a.c:1\n', "x".repeat(5000) + "\ny", "bad \xff\xfe utf-8\n"];

  it("splits a file into the lines a string split gives, at byte offsets, whatever the piece size (multi-byte characters cut between pieces)", async () => {
    for (const [i, text] of texts.entries()) {
      const file = join(dir, `t${i}.txt`);
      writeFileSync(file, text);
      for (const chunk of [1, 2, 3, 7, 4096, 1 << 20]) {
        const source = await fileSource(file, chunk);
        try {
          const { lines, size } = await linesOf(source);
          expect({ i, chunk, lines }).toEqual({ i, chunk, lines: expected(text) });
          expect(size).toBe(Buffer.byteLength(text));
        } finally {
          await source.close();
        }
      }
    }
  });

  it("decodes malformed UTF-8 line by line as the whole text would be decoded", async () => {
    const bytes = Buffer.from([0x61, 0xe2, 0x82, 0x0a, 0xf0, 0x9f, 0x0a, 0x62]);
    const { lines } = await linesOf(bufferSource(bytes));
    expect(lines.map((l) => l[0])).toEqual(bytes.toString("utf8").split("\n"));
  });

  it("reads a byte range back, and the whole text", async () => {
    const text = "héllo\nwörld\n";
    const file = join(dir, "range.txt");
    writeFileSync(file, text);
    const source = await fileSource(file, 2);
    try {
      const { lines } = await linesOf(source);
      expect(await source.text(lines[1]![1], lines[2]![1])).toBe("wörld\n");
      expect(await source.all()).toBe(text);
    } finally {
      await source.close();
    }
    const mem = bufferSource(Buffer.from(text));
    expect(await mem.text(0, 7)).toBe("héllo\n");
    expect(await mem.all()).toBe(text);
  });

  it("reads a pipe whole (it cannot be read twice), so a range can still be read back", async () => {
    const fifo = join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    const writer = spawn("sh", ["-c", `printf 'a\\nbé\\nc' > ${fifo}`]);
    const source = await fileSource(fifo, 1);
    try {
      const { lines, size } = await linesOf(source);
      expect(lines).toEqual(expected("a\nbé\nc"));
      expect(size).toBe(Buffer.byteLength("a\nbé\nc"));
      expect(await source.text(lines[1]![1], lines[2]![1])).toBe("bé\n");
    } finally {
      await source.close();
      writer.kill();
    }
  });

  it("fails when opened on a missing file or a directory, with the error's code", async () => {
    await expect(fileSource(join(dir, "missing.txt"))).rejects.toMatchObject({ code: "ENOENT" });
    mkdirSync(join(dir, "sub"));
    await expect(fileSource(join(dir, "sub"))).rejects.toMatchObject({ code: "EISDIR" });
  });
});
