/**
 * gdb's index cache (lib/gdb/indexCache.ts): scoped by where a file came
 * from, the executable's index never kept, bounded, and never a different
 * answer: every fixture is analyzed with the cache off, cold and warm.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { execa } from "execa";
import { analyzeDump, type SymbolsOptions } from "../../../lib/analyze.js";
import { GdbIndexCache, indexCacheRun, indexEntries } from "../../../lib/gdb/indexCache.js";
import { runGdb } from "../../../lib/gdb/run.js";
import type { ResolvedModule } from "../../../lib/symbols/resolve.js";
import { prepareSymbols } from "../../../lib/symbols/prepare.js";
import { crashProgram } from "../../helpers/crashProgram.js";
import { FIXTURE_NAMES, requireFixture, requireFixtures } from "../../helpers/fixtures.js";
import { stableResult } from "../../helpers/golden.js";

let tmp: string;
let symbols: SymbolsOptions;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "index-cache-test-"));
  symbols = { cacheDir: path.join(tmp, "symbol-cache"), cacheMaxBytes: 1 << 30 };
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const ID = (n: number) => n.toString(16).padStart(40, "0");
const LAYER = "sha256:" + "ab".repeat(32);

function mod(over: Partial<ResolvedModule>): ResolvedModule {
  return {
    path: "/usr/lib/libx.so",
    build_id: ID(1),
    start: "0x1000",
    end: "0x2000",
    executable: false,
    status: "found",
    source: "host",
    file: "/usr/lib/libx.so",
    cached: false,
    debug: null,
    symbols: "dwarf",
    rejected: [],
    errors: [],
    soname: null,
    ...over,
  };
}

describe("indexEntries: which indexes a run may share, and with whom", () => {
  test("this machine's, the store's and debuginfod's files share one scope; an image file only its layer's", () => {
    const entries = indexEntries([
      mod({ build_id: ID(1), source: "host" }),
      mod({ build_id: ID(2), source: "symbol_store" }),
      mod({ build_id: ID(3), source: "host", debug: { file: "/d", source: "debuginfod", cached: true } }),
      mod({ build_id: ID(4), source: "image", image: { reference: "r", layer: LAYER, debug_layer: null } }),
      // The debug file is what gdb indexes: its layer is the scope.
      mod({
        build_id: ID(5),
        source: "image",
        debug: { file: "/d", source: "image", cached: true },
        image: { reference: "r", layer: LAYER, debug_layer: "sha256:" + "cd".repeat(32) },
      }),
    ]);
    expect(entries).toEqual([
      { buildId: ID(1), scope: "trusted" },
      { buildId: ID(2), scope: "trusted" },
      { buildId: ID(3), scope: "trusted" },
      { buildId: ID(4), scope: `layer-${"ab".repeat(32)}` },
      { buildId: ID(5), scope: `layer-${"cd".repeat(32)}` },
    ]);
  });

  test("never the executable, a file given by the caller, an image file of unknown layer, a module not found or without a build-id", () => {
    expect(
      indexEntries([
        mod({ executable: true }),
        mod({ build_id: ID(2), source: "exe" }),
        mod({ build_id: ID(3), source: "image" }),
        mod({ build_id: ID(4), status: "missing", source: null, file: null }),
        mod({ build_id: null }),
        mod({ build_id: "../../etc" }),
      ]),
    ).toEqual([]);
  });
});

describe("GdbIndexCache on disk", () => {
  test("prepare links the cached entries of this run only; adopt takes what gdb wrote for them, never another name, never over an entry", async () => {
    const dir = path.join(tmp, "disk-cache");
    const cache = new GdbIndexCache({ dir, maxBytes: 1 << 20 });
    const mine = { buildId: ID(1), scope: "trusted" };
    const other = { buildId: ID(2), scope: "trusted" };
    await fs.mkdir(path.join(dir, "trusted"), { recursive: true });
    await fs.writeFile(path.join(dir, "trusted", `${ID(2)}.gdb-index`), "other job's");

    const run = path.join(tmp, "run-1");
    expect(await cache.prepare(run, [mine])).toBe(0);
    expect(await fs.readdir(run)).toEqual([]); // the other entry is not this run's
    await fs.writeFile(path.join(run, `${ID(1)}.gdb-index`), "written by gdb");
    await fs.writeFile(path.join(run, `${ID(9)}.gdb-index`), "the executable's");
    await fs.writeFile(path.join(run, `${ID(2)}.gdb-index`), "forged");
    expect(await cache.adopt(run, [mine])).toBe(1);
    expect(await fs.readFile(path.join(dir, "trusted", `${ID(1)}.gdb-index`), "utf8")).toBe("written by gdb");
    expect(await fs.readFile(path.join(dir, "trusted", `${ID(2)}.gdb-index`), "utf8")).toBe("other job's");
    expect((await cache.entries()).map((e) => path.basename(e.file)).sort()).toEqual([`${ID(1)}.gdb-index`, `${ID(2)}.gdb-index`]);

    // A second run gets both as links; adopting them again adds nothing.
    const run2 = path.join(tmp, "run-2");
    expect(await cache.prepare(run2, [mine, other])).toBe(2);
    expect(await cache.adopt(run2, [mine, other])).toBe(0);
  });

  test("evicts the least recently used entries down to maxBytes", async () => {
    const dir = path.join(tmp, "evict-cache");
    const cache = new GdbIndexCache({ dir, maxBytes: 2500 });
    await fs.mkdir(path.join(dir, "trusted"), { recursive: true });
    for (const n of [1, 2, 3]) {
      const f = path.join(dir, "trusted", `${ID(n)}.gdb-index`);
      await fs.writeFile(f, Buffer.alloc(1000));
      const t = new Date(Date.now() - (10 - n) * 60_000); // 1 oldest, 3 newest
      await fs.utimes(f, t, t);
    }
    // Using entry 1 makes it the newest.
    expect(await cache.prepare(path.join(tmp, "evict-run"), [{ buildId: ID(1), scope: "trusted" }])).toBe(1);
    await cache.evict();
    expect((await cache.entries()).map((e) => path.basename(e.file)).sort()).toEqual([`${ID(1)}.gdb-index`, `${ID(3)}.gdb-index`]);
  });
});

describe("with real gdb", () => {
  /** A program that crashes inside a shared library of its own, built with DWARF: an index gdb builds. */
  async function libraryCrash(): Promise<{ core: string; exe: string; libId: string }> {
    const dir = path.join(tmp, "lib-crash");
    await fs.mkdir(dir, { recursive: true });
    await fs.writeFile(path.join(dir, "libcrash.c"), "int crash_in_lib(int *p) { int local = *p; return local + 1; }\n");
    await execa("gcc", ["-g", "-O0", "-shared", "-fPIC", "-Wl,--build-id", "-o", path.join(dir, "libcrash.so"), path.join(dir, "libcrash.c")]);
    const crash = await crashProgram({
      dir,
      source: "int crash_in_lib(int *p);\nint main(void) { return crash_in_lib(0); }\n",
      cflags: ["-Wl,--build-id"],
      libs: ["-Wl,--no-as-needed", `-L${dir}`, "-lcrash", `-Wl,-rpath,${dir}`],
    });
    const notes = (await execa("readelf", ["-n", path.join(dir, "libcrash.so")])).stdout;
    const libId = /Build ID: ([0-9a-f]+)/.exec(notes)?.[1];
    if (!libId) throw new Error("libcrash.so has no build-id");
    return { ...crash, libId };
  }

  test("a library's DWARF index is written once and read by the next run; the executable's is never kept", async () => {
    const { core, libId } = await libraryCrash();
    const cacheDir = path.join(tmp, "lib-index");
    const opts = { dir: cacheDir, maxBytes: 1 << 30 };
    const gdbRun = async (n: number) => {
      const work = path.join(tmp, `lib-run-${n}`);
      await fs.mkdir(work);
      const prepared = await prepareSymbols({ core, workDir: work, symbols });
      const index = await indexCacheRun(opts, prepared.modules, path.join(work, "gdb-index"));
      expect(index).not.toBeNull();
      const run = await runGdb({
        core,
        exe: prepared.tree.exe,
        sysroot: prepared.tree.sysroot,
        solibSearchPath: prepared.tree.solibSearchPath,
        debugFileDirectories: prepared.tree.debugFileDirectories,
        indexCacheDir: index!.dir,
        extraSections: [{ name: "stats", commands: ["show index-cache stats"] }],
      });
      await index!.finish();
      return { run, exeId: prepared.modules.find((m) => m.executable)?.build_id };
    };
    const cold = await gdbRun(1);
    expect(cold.run.sections.backtrace).toContain("crash_in_lib (p=0x0) at");
    expect(cold.run.sections.stats).toMatch(/Cache hits \(this session\): 0/);
    const kept = (await new GdbIndexCache(opts).entries()).map((e) => path.relative(cacheDir, e.file));
    expect(kept).toContain(`trusted/${libId}.gdb-index`);
    expect(cold.exeId).toBeTruthy();
    expect(kept).not.toContain(`trusted/${cold.exeId}.gdb-index`);

    const warm = await gdbRun(2);
    expect(warm.run.sections.stats).toMatch(/Cache hits \(this session\): [1-9]/);
    expect(warm.run.sections.backtrace).toBe(cold.run.sections.backtrace);
  });

  test("every fixture: the same result with the cache off, cold and warm (this machine's debug files included)", async () => {
    requireFixtures();
    const cacheDir = path.join(tmp, "fixtures-index");
    for (const name of FIXTURE_NAMES) {
      const f = requireFixture(name);
      const results = [];
      for (const gdbIndexCache of [null, { dir: cacheDir, maxBytes: 1 << 30 }, { dir: cacheDir, maxBytes: 1 << 30 }]) {
        results.push(stableResult(await analyzeDump({ core: f.core, symbols, gdbIndexCache })));
      }
      expect({ name, cold: results[1] }).toEqual({ name, cold: results[0] });
      expect({ name, warm: results[2] }).toEqual({ name, warm: results[0] });
    }
  });
});
