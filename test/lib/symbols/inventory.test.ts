import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { AT_PHDR, AT_SYSINFO_EHDR, parseAuxv, parseNtFile, parsePrpsinfo, type CoreNotes } from "../../../lib/elf/coreNotes.js";
import { readBuildId } from "../../../lib/elf/buildId.js";
import { buildInventory, inventoryCore, moduleAt } from "../../../lib/symbols/inventory.js";
import { parseUnstripList } from "../../../lib/symbols/unstrip.js";
import { LIB_MAIN, compile, crashIn, librarySource, tempDir } from "./crashFixture.js";

const UNSTRIP = `0x400000+0x2000 abcdef0123456789abcdef0123456789abcdef01@0x400284 /path/exe - /path/exe
0x7f0000001000+0x2000 1111222233334444555566667777888899990000@0x7f0000001604 . - linux-vdso.so.1
0x7f0000100000+0x1e1f50 93ac61ec5a8eb1396f9fbd350e3169a558528a40@0x7f0000100380 /lib/x86_64-linux-gnu/libc.so.6 /usr/lib/debug/.build-id/93/ac61ec5a8eb1396f9fbd350e3169a558528a40.debug libc.so.6
0x7f0000300000+0x1000 - - - /opt/app/lib/libnoid.so
garbage line
`;

describe("eu-unstrip -n output (pure)", () => {
  test("parses ranges, build-ids, found-file columns and names", () => {
    const mods = parseUnstripList(UNSTRIP);
    expect(mods).toHaveLength(4);
    expect(mods[0]).toEqual({
      start: 0x400000,
      end: 0x402000,
      buildId: "abcdef0123456789abcdef0123456789abcdef01",
      buildIdAddress: 0x400284,
      file: "/path/exe",
      debugFile: null,
      name: "/path/exe",
    });
    expect(mods[1]!.file).toBeNull(); // "." = the image in the core, not a file
    expect(mods[2]!.debugFile).toMatch(/\.debug$/);
    expect(mods[3]).toMatchObject({ buildId: null, buildIdAddress: null, name: "/opt/app/lib/libnoid.so" });
  });
});

function ntFile(entries: Array<[number, number, number, string]>, pageSize = 4096): Buffer {
  const words = [entries.length, pageSize, ...entries.flatMap(([s, e, o]) => [s, e, o])];
  const table = Buffer.alloc(words.length * 8);
  words.forEach((w, i) => table.writeBigUInt64LE(BigInt(w), i * 8));
  return Buffer.concat([table, ...entries.map(([, , , p]) => Buffer.from(p + "\0"))]);
}

describe("core notes (pure)", () => {
  test("NT_FILE gives each mapping's path and byte offset", () => {
    const buf = ntFile([
      [0x400000, 0x401000, 0, "/app/bin/server"],
      [0x401000, 0x403000, 1, "/app/bin/server"],
      [0x7f0000100000, 0x7f0000126000, 0, "/usr/lib/x86_64-linux-gnu/libc.so.6 (deleted)"],
    ]);
    const maps = parseNtFile(buf, true, true);
    expect(maps).toHaveLength(3);
    expect(maps[1]).toEqual({ start: 0x401000, end: 0x403000, offset: 4096, path: "/app/bin/server" });
    expect(maps[2]!.path).toBe("/usr/lib/x86_64-linux-gnu/libc.so.6 (deleted)");
  });

  test("NT_PRPSINFO strings sit at the end whatever the layout before them", () => {
    for (const head of [40, 28, 32]) {
      const buf = Buffer.alloc(head + 96);
      buf.write("server", head);
      buf.write("/app/bin/server --port 8080 ", head + 16);
      buf.writeInt32LE(4242, head - 16); // pr_pid, first of the four pids before pr_fname
      expect(parsePrpsinfo(buf)).toEqual({ fname: "server", psargs: "/app/bin/server --port 8080", pid: 4242 });
    }
  });

  test("NT_AUXV pairs stop at AT_NULL", () => {
    const buf = Buffer.alloc(8 * 6);
    [3, 0x400040, 0, 0, 9, 0x401000].forEach((v, i) => buf.writeBigUInt64LE(BigInt(v), i * 8));
    expect([...parseAuxv(buf, true, true)]).toEqual([[3, 0x400040]]);
  });

  test("the inventory takes paths from NT_FILE, marks the executable by AT_PHDR and leaves out the vDSO", () => {
    const notes: CoreNotes = {
      machine: "x86_64",
      is64: true,
      littleEndian: true,
      mappings: parseNtFile(
        ntFile([
          [0x400000, 0x402000, 0, "/app/bin/server"],
          [0x7f0000100000, 0x7f0000126000, 0, "/usr/lib/x86_64-linux-gnu/libc.so.6 (deleted)"],
        ]),
        true,
        true,
      ),
      fname: "server",
      psargs: "/app/bin/server --port 8080",
      pid: 4242,
      auxv: new Map([
        [AT_PHDR, 0x400040],
        [AT_SYSINFO_EHDR, 0x7f0000001000],
      ]),
      execfn: null,
      signo: null,
    };
    const inv = buildInventory(parseUnstripList(UNSTRIP), notes);
    expect(inv.executable).toBe("/app/bin/server");
    expect(inv.commandLine).toBe("/app/bin/server --port 8080");
    expect(inv.modules.map((m) => [m.path, m.executable])).toEqual([
      ["/app/bin/server", true],
      ["/usr/lib/x86_64-linux-gnu/libc.so.6", false],
      ["/opt/app/lib/libnoid.so", false],
    ]);
    expect(inv.modules[1]).toMatchObject({ start: "0x7f0000100000", end: "0x7f00002e1f50" });
    expect(moduleAt(inv.modules, "0x7f0000100abc")?.path).toBe("/usr/lib/x86_64-linux-gnu/libc.so.6");
    expect(moduleAt(inv.modules, "0x10")).toBeUndefined();
  });

  test("without recognized modules the executable is still listed, by the notes' path and without a build-id", () => {
    const inv = buildInventory([], {
      machine: "aarch64",
      is64: true,
      littleEndian: true,
      mappings: [],
      fname: "null",
      psargs: "./null",
      pid: null,
      auxv: new Map(),
      execfn: null,
      signo: null,
    });
    expect(inv.modules).toEqual([{ path: "./null", build_id: null, start: null, end: null, executable: true }]);
  });
});

describe("inventoryCore on a real core", () => {
  let dir: string;
  let exe: string;
  let lib: string;
  let core: string;
  beforeAll(async () => {
    dir = await tempDir("inventory");
    lib = await compile(dir, "libcrash.so", librarySource("a"), ["-shared", "-fPIC"]);
    exe = await compile(dir, "app", LIB_MAIN, [`-L${dir}`, "-l:libcrash.so", `-Wl,-rpath,${dir}`]);
    core = await crashIn(dir, exe, ["--flag", "value"]);
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  test("lists the executable, its library and libc with the build-ids of the files, and the command line", async () => {
    const inv = await inventoryCore(core);
    expect(inv.machine).toBe("x86_64");
    expect(inv.executable).toBe(exe);
    expect(inv.commandLine).toBe(`${exe} --flag value`);
    const byPath = new Map(inv.modules.map((m) => [m.path, m]));
    expect(byPath.get(exe)).toMatchObject({ executable: true, build_id: await readBuildId(exe) });
    expect(byPath.get(lib)).toMatchObject({ executable: false, build_id: await readBuildId(lib) });
    const libc = inv.modules.find((m) => path.basename(m.path) === "libc.so.6");
    expect(libc?.build_id).toBe(await readBuildId(libc!.path));
    expect(inv.modules.some((m) => m.path.includes("vdso"))).toBe(false);
    for (const m of inv.modules) expect(BigInt(m.end!)).toBeGreaterThan(BigInt(m.start!));
  });

  test("the inventory needs nothing but the core: the same after the binaries are gone", async () => {
    const before = await inventoryCore(core);
    const hidden = path.join(dir, "hidden");
    await fs.mkdir(hidden);
    await fs.rename(exe, path.join(hidden, "app"));
    await fs.rename(lib, path.join(hidden, "libcrash.so"));
    try {
      const after = await inventoryCore(core);
      expect(after.modules.map((m) => [m.path, m.build_id]).sort()).toEqual(before.modules.map((m) => [m.path, m.build_id]).sort());
      expect(after.executable).toBe(exe);
    } finally {
      await fs.rename(path.join(hidden, "app"), exe);
      await fs.rename(path.join(hidden, "libcrash.so"), lib);
    }
  });
});
