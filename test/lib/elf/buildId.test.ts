import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { execa } from "execa";
import { buildIdOf, describeElf, readBuildId } from "../../../lib/elf/buildId.js";
import { NotElfError, parseElfHeader, parseNotes } from "../../../lib/elf/file.js";
import { compile, euBuildId, stripCopy, tempDir } from "../symbols/crashFixture.js";

/** A note as the linker writes it: namesz, descsz, type, name, desc, each padded to 4. */
function note(name: string, type: number, desc: Buffer, le = true): Buffer {
  const nameBuf = Buffer.from(name + "\0");
  const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
  const head = Buffer.alloc(12);
  const w = (v: number, o: number) => (le ? head.writeUInt32LE(v, o) : head.writeUInt32BE(v, o));
  w(nameBuf.length, 0);
  w(desc.length, 4);
  w(type, 8);
  return Buffer.concat([head, pad(nameBuf), pad(desc)]);
}

describe("note parsing (pure)", () => {
  test("finds the GNU build-id among other notes, both endiannesses", () => {
    const id = Buffer.from("0123456789abcdef0123456789abcdef01234567", "hex");
    for (const le of [true, false]) {
      const buf = Buffer.concat([note("GNU", 1, Buffer.alloc(16), le), note("GNU", 3, id, le), note("stapsdt", 3, Buffer.from("xx"), le)]);
      const notes = parseNotes(buf, le);
      expect(notes.map((n) => n.name)).toEqual(["GNU", "GNU", "stapsdt"]);
      expect(buildIdOf(notes)).toBe(id.toString("hex"));
    }
  });

  test("a build-id note of another owner is not a build-id", () => {
    expect(buildIdOf(parseNotes(note("Go", 3, Buffer.from("abcd")), true))).toBeNull();
  });

  test("a truncated note keeps what parsed cleanly", () => {
    const whole = Buffer.concat([note("GNU", 3, Buffer.from("a1b2c3d4", "hex")), note("GNU", 1, Buffer.alloc(32))]);
    expect(parseNotes(whole.subarray(0, whole.length - 8), true)).toHaveLength(1);
  });

  test("rejects what is not ELF", () => {
    expect(() => parseElfHeader(Buffer.from("#!/bin/sh\necho hi\n".padEnd(64)))).toThrow(NotElfError);
  });
});

describe("build-ids of real files", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir("buildid");
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  test("unstripped, stripped and --only-keep-debug files share the build-id eu-readelf reports, and say what they hold", async () => {
    const exe = await compile(dir, "prog", "int main(void){return 0;}\n");
    const { stripped, debug } = await stripCopy(exe, path.join(dir, "prog.stripped"));
    const expected = await euBuildId(exe);
    expect(expected).toMatch(/^[0-9a-f]{40}$/);

    const full = await describeElf(exe);
    expect(full).toMatchObject({ buildId: expected, machine: "x86_64", hasCode: true, hasDebugInfo: true, hasSymtab: true });
    expect(await describeElf(stripped)).toMatchObject({ buildId: expected, hasCode: true, hasDebugInfo: false, hasSymtab: false });
    expect(await describeElf(debug)).toMatchObject({ buildId: expected, hasCode: false, hasDebugInfo: true });
  });

  test("two builds of different code have different build-ids", async () => {
    const a = await compile(dir, "a", "int main(void){return 1;}\n");
    const b = await compile(dir, "b", "int main(void){return 2;}\n");
    expect(await readBuildId(a)).not.toBe(await readBuildId(b));
  });

  test("a file linked without a build-id has none; a text file and a missing file have none", async () => {
    const none = await compile(dir, "noid", "int main(void){return 0;}\n", ["-Wl,--build-id=none"]);
    expect(await readBuildId(none)).toBeNull();
    await fs.writeFile(path.join(dir, "text"), "hello\n");
    expect(await readBuildId(path.join(dir, "text"))).toBeNull();
    expect(await readBuildId(path.join(dir, "absent"))).toBeNull();
  });

  test("reads a foreign architecture's binary (aarch64 cross build)", async () => {
    const src = path.join(dir, "a64.c");
    await fs.writeFile(src, "int main(void){return 0;}\n");
    const out = path.join(dir, "a64");
    await execa("aarch64-linux-gnu-gcc", ["-g", "-static", "-Wl,--build-id", "-o", out, src]);
    const d = await describeElf(out);
    expect(d.machine).toBe("aarch64");
    expect(d.buildId).toBe(await euBuildId(out));
  });
});
