import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { readBuildId } from "../../../lib/elf/buildId.js";
import { EXIT, UsageError } from "../../../worker/command.js";
import { symbolsCommand } from "../../../worker/commands/symbols.js";
import { startS3Server, type S3TestServer } from "../../helpers/s3Server.js";
import { LIB_MAIN, compile, crashIn, librarySource, stripCopy, tempDir } from "../../lib/symbols/crashFixture.js";

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: (s: string) => void out.push(s), stderr: (s: string) => void err.push(s) }, out: () => out.join(""), err: () => err.join("") };
}

describe("coresight-worker symbols", () => {
  let dir: string;
  let exe: string;
  let lib: string;
  let core: string;
  let exeId: string;
  let libId: string;
  let s3: S3TestServer;
  const env = (extra: Record<string, string> = {}) => ({ LOG_FILE: "", WORK_DIR: path.join(dir, "work"), ...extra });

  beforeAll(async () => {
    dir = await tempDir("symcmd");
    const build = path.join(dir, "build");
    await fs.mkdir(build);
    lib = await compile(build, "libcrash.so", librarySource("a"), ["-shared", "-fPIC"]);
    exe = await compile(build, "app", LIB_MAIN, [`-L${build}`, "-l:libcrash.so", `-Wl,-rpath,${build}`]);
    core = await crashIn(build, exe);
    exeId = (await readBuildId(exe))!;
    libId = (await readBuildId(lib))!;
    s3 = await startS3Server();
  });
  afterAll(async () => {
    await s3?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test("--help explains the ladder and every subcommand", async () => {
    const c = capture();
    expect(await symbolsCommand(["--help"], { io: c.io })).toBe(EXIT.ok);
    for (const word of ["add <file>", "list <core>", "id <file>", "mismatched", "SYMBOL_STORE", "DEBUGINFOD_URLS", "-Wl,--build-id"]) {
      expect(c.out()).toContain(word);
    }
  });

  test("usage errors name the problem", async () => {
    await expect(symbolsCommand(["frobnicate"], { io: capture().io })).rejects.toThrow(UsageError);
    await expect(symbolsCommand(["add", exe], { io: capture().io, env: env() })).rejects.toThrow(/no store/);
    await expect(symbolsCommand(["list"], { io: capture().io, env: env() })).rejects.toThrow(/exactly one core/);
    await expect(symbolsCommand(["list", core, "--order", "exe,nowhere"], { io: capture().io, env: env() })).rejects.toThrow(/unknown symbol source/);
  });

  test("add stores into SYMBOL_STORE by default and prints build-ids; a missing input is exit 5", async () => {
    const store = path.join(dir, "store-env");
    const c = capture();
    expect(await symbolsCommand(["add", exe, lib], { io: c.io, env: env({ SYMBOL_STORE: store }) })).toBe(EXIT.ok);
    expect(c.out()).toContain(`${exeId}  executable+debuginfo`);
    expect(c.out()).toContain("2 of 2 file(s) stored");
    expect((await fs.readdir(store)).sort()).toEqual([exeId, libId].sort());
    expect(await symbolsCommand(["add", path.join(dir, "nope")], { io: capture().io, env: env({ SYMBOL_STORE: store }) })).toBe(EXIT.noInput);
  });

  test("add to s3://bucket/prefix with --json", async () => {
    await s3.createBucket("ci-symbols");
    const { stripped, debug } = await stripCopy(exe, path.join(dir, "app.stripped"));
    const c = capture();
    const code = await symbolsCommand(["add", stripped, debug, "--store", "s3://ci-symbols/app/v1", "--json"], { io: c.io, env: env(), s3: s3.client });
    expect(code).toBe(EXIT.ok);
    const doc = JSON.parse(c.out()) as { store: string; files: Array<{ build_id: string; kinds: string[] }> };
    expect(doc.store).toBe("s3://ci-symbols/app/v1");
    expect(doc.files.map((f) => [f.build_id, f.kinds])).toEqual([
      [exeId, ["executable"]],
      [exeId, ["debuginfo"]],
    ]);
  });

  test("list --json: modules with status and source, build-ids to upload", async () => {
    const c = capture();
    // Only the library is in the store: the executable must be reported missing.
    const store = path.join(dir, "store-lib-only");
    await symbolsCommand(["add", lib, "--store", store], { io: capture().io, env: env() });
    const code = await symbolsCommand(["list", core, "--store", store, "--order", "symbol_store,host", "--json"], { io: c.io, env: env() });
    expect(code).toBe(EXIT.ok);
    const doc = JSON.parse(c.out()) as {
      executable: string;
      modules: Array<{ path: string; status: string; source: string | null }>;
      symbolication: { missing_build_ids: string[] };
    };
    expect(doc.executable).toBe(exe);
    const st = Object.fromEntries(doc.modules.map((m) => [m.path, [m.status, m.source]]));
    // The exe is on this host with the same build-id: found there, since the store lacks it.
    expect(st[exe]).toEqual(["found", "host"]);
    expect(st[lib]).toEqual(["found", "symbol_store"]);
    expect(doc.symbolication.missing_build_ids).toEqual([]);

    const c2 = capture();
    await symbolsCommand(["list", core, "--store", store, "--order", "symbol_store"], { io: c2.io, env: env() });
    expect(c2.out()).toMatch(new RegExp(`missing +${exeId} +${exe.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\[exe\\]`));
    expect(c2.out()).toContain(`build-ids to upload (coresight-worker symbols add):\n  ${exeId}`);
  });

  test("list on a file that is not a core fails with exit 1 and says why", async () => {
    const c = capture();
    expect(await symbolsCommand(["list", exe], { io: c.io, env: env() })).toBe(EXIT.failed);
    expect(c.err()).toMatch(/not a core/);
  });

  test("id prints build-id, machine and contents", async () => {
    const c = capture();
    expect(await symbolsCommand(["id", exe, lib], { io: c.io })).toBe(EXIT.ok);
    expect(c.out()).toContain(`${exeId}  x86_64   code+dwarf+symtab`);
    expect(c.out()).toContain(libId);
  });
});
