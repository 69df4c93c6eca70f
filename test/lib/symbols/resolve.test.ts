import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { readBuildId } from "../../../lib/elf/buildId.js";
import { inventoryCore, type Inventory } from "../../../lib/symbols/inventory.js";
import { pathAliases, parseOrder, resolveInRoot, resolveModules } from "../../../lib/symbols/resolve.js";
import { LocalSymbolStore } from "../../../lib/symbols/store.js";
import { addToStore } from "../../../lib/symbols/add.js";
import { assembleTree } from "../../../lib/symbols/tree.js";
import { symbolicationOf } from "../../../lib/symbols/report.js";
import { LIB_MAIN, compile, crashIn, librarySource, stripCopy, tempDir } from "./crashFixture.js";

describe("paths (pure and in a root)", () => {
  test("merged-/usr aliases both ways", () => {
    expect(pathAliases("/usr/lib/x86_64-linux-gnu/libc.so.6")).toEqual(["/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6"]);
    expect(pathAliases("/lib64/ld-linux-x86-64.so.2")).toEqual(["/lib64/ld-linux-x86-64.so.2", "/usr/lib64/ld-linux-x86-64.so.2"]);
    expect(pathAliases("/opt/app/bin/server")).toEqual(["/opt/app/bin/server"]);
  });

  test("ladder order names are checked", () => {
    expect(parseOrder("symbol_store, exe")).toEqual(["symbol_store", "exe"]);
    expect(() => parseOrder("exe,cloud")).toThrow(/unknown symbol source "cloud"/);
  });

  test("an absolute symlink in a sysroot resolves inside it, never on this machine", async () => {
    const root = await tempDir("root");
    try {
      await fs.mkdir(path.join(root, "usr/lib/x86_64-linux-gnu"), { recursive: true });
      await fs.writeFile(path.join(root, "usr/lib/x86_64-linux-gnu/libc.so.6"), "image libc");
      await fs.symlink("usr/lib", path.join(root, "lib"));
      await fs.mkdir(path.join(root, "lib64-dir"));
      await fs.symlink("/lib/x86_64-linux-gnu/libc.so.6", path.join(root, "abs-link"));
      await fs.symlink("../../../../../../etc/hostname", path.join(root, "climb"));
      expect(await resolveInRoot(root, "/abs-link")).toBe(path.join(root, "usr/lib/x86_64-linux-gnu/libc.so.6"));
      expect(await resolveInRoot(root, "/lib/x86_64-linux-gnu/libc.so.6")).toBe(path.join(root, "usr/lib/x86_64-linux-gnu/libc.so.6"));
      expect(await resolveInRoot(root, "/climb")).toBeNull(); // /etc/hostname inside the root: absent
      expect(await resolveInRoot(root, "/nope")).toBeNull();
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });
});

describe("the ladder on a real crash", () => {
  let dir: string;
  let inv: Inventory;
  let exe: string;
  let lib: string;
  let exeId: string;
  let libId: string;
  /** Where the crashed build's files were moved to: like a pod's image, gone from this machine. */
  let away: string;

  beforeAll(async () => {
    dir = await tempDir("ladder");
    const build = path.join(dir, "opt/app");
    await fs.mkdir(build, { recursive: true });
    lib = await compile(build, "libcrash.so", librarySource("a"), ["-shared", "-fPIC"]);
    exe = await compile(build, "app", LIB_MAIN, [`-L${build}`, "-l:libcrash.so", `-Wl,-rpath,${build}`]);
    const core = await crashIn(build, exe);
    exeId = (await readBuildId(exe))!;
    libId = (await readBuildId(lib))!;
    inv = await inventoryCore(core);
    away = path.join(dir, "away");
    await fs.mkdir(away);
    await fs.rename(exe, path.join(away, "app"));
    await fs.rename(lib, path.join(away, "libcrash.so"));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const byPath = <T extends { path: string }>(mods: T[], p: string) => mods.find((m) => m.path === p)!;

  test("without sources the executable and its library are missing; libc is found on this host (same build-id)", async () => {
    const r = await resolveModules(inv.modules, {});
    expect(byPath(r, exe)).toMatchObject({ status: "missing", source: null, file: null });
    expect(byPath(r, lib).status).toBe("missing");
    const libc = r.find((m) => path.basename(m.path) === "libc.so.6")!;
    expect(libc).toMatchObject({ status: "found", source: "host" });
    expect(symbolicationOf(r).missing_build_ids.sort()).toEqual([exeId, libId].sort());
  });

  test("a sysroot holding another build of the library: mismatched, reported with its build-id, never used", async () => {
    const sysroot = path.join(dir, "sysroot-other-build");
    const libDir = path.join(sysroot, path.dirname(lib));
    await fs.mkdir(libDir, { recursive: true });
    const other = await compile(libDir, "libcrash.so", librarySource("b"), ["-shared", "-fPIC"]);
    const otherId = await readBuildId(other);
    expect(otherId).not.toBe(libId);

    const r = await resolveModules(inv.modules, { sysroot });
    const m = byPath(r, lib);
    expect(m).toMatchObject({ status: "mismatched", source: null, rejected: [{ source: "sysroot", file: other, build_id: otherId }] });
    expect(symbolicationOf(r)).toMatchObject({ mismatched: 1, missing: 1 });

    const tree = await assembleTree(r, path.join(dir, "job-mismatch"));
    await expect(fs.lstat(path.join(tree.sysroot, lib))).rejects.toThrow(/ENOENT/);
    await expect(fs.lstat(path.join(tree.solibSearchPath[0]!, "libcrash.so"))).rejects.toThrow(/ENOENT/);
  });

  test("--exe of another build is mismatched too; the right one is found", async () => {
    const otherExe = await compile(away, "other-app", "int main(void){return 3;}\n");
    const bad = await resolveModules(inv.modules, { exe: otherExe });
    expect(byPath(bad, exe).status).toBe("mismatched");
    const good = await resolveModules(inv.modules, { exe: path.join(away, "app") });
    expect(byPath(good, exe)).toMatchObject({ status: "found", source: "exe", file: path.join(away, "app"), symbols: "dwarf" });
  });

  test("a local symbol store: stripped binary as the file, debug file beside it, both in the job tree", async () => {
    const store = new LocalSymbolStore(path.join(dir, "store"));
    const s = await stripCopy(path.join(away, "app"), path.join(dir, "app.stripped"));
    await addToStore([s.stripped, s.debug, path.join(away, "libcrash.so")], store);
    const r = await resolveModules(inv.modules, { store });
    const e = byPath(r, exe);
    expect(e).toMatchObject({ status: "found", source: "symbol_store", file: path.join(store.location, exeId, "executable"), symbols: "dwarf" });
    expect(e.debug).toEqual({ file: path.join(store.location, exeId, "debuginfo"), source: "symbol_store", cached: false });
    expect(byPath(r, lib)).toMatchObject({ status: "found", source: "symbol_store", debug: null });

    const tree = await assembleTree(r, path.join(dir, "job-store"));
    expect(tree.exe).toBe(e.file);
    expect(await readBuildId(path.join(tree.sysroot, lib))).toBe(libId);
    expect(await readBuildId(path.join(tree.solibSearchPath[0]!, "libcrash.so"))).toBe(libId);
    expect(await readBuildId(path.join(tree.debugFileDirectories[0]!, ".build-id", exeId.slice(0, 2), `${exeId.slice(2)}.debug`))).toBe(exeId);
  });

  test("the order decides which matching source is reported", async () => {
    const store = new LocalSymbolStore(path.join(dir, "store"));
    const r1 = await resolveModules(inv.modules, { store, exe: path.join(away, "app"), order: ["symbol_store", "exe"] });
    expect(byPath(r1, exe).source).toBe("symbol_store");
    const r2 = await resolveModules(inv.modules, { store, exe: path.join(away, "app"), order: ["exe", "symbol_store"] });
    expect(byPath(r2, exe).source).toBe("exe");
    const r3 = await resolveModules(inv.modules, { order: ["exe"] });
    expect(r3.find((m) => path.basename(m.path) === "libc.so.6")!.status).toBe("missing"); // no host rung
  });
});
