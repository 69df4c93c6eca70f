/**
 * analyzeDump end to end: real gdb, real cores, a real debuginfod, a
 * real S3 server (s3rver) and local stores. The crashed build's files are
 * moved away after the crash, as in a pod whose image is not on the worker,
 * so the only way to a name is the source under test.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import { freePort } from "../../dev/port.js";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { execa } from "execa";
import { analyzeDump, type AnalyzeDumpOptions } from "../../lib/analyze.js";
import type { Frame, Result } from "../../lib/result.js";
import { addToStore } from "../../lib/symbols/add.js";
import { readBuildId } from "../../lib/elf/buildId.js";
import { LocalSymbolStore, openSymbolStore } from "../../lib/symbols/store.js";
import { fixture, requireFixtures, type FixtureName } from "../helpers/fixtures.js";
import { startS3Server, type S3TestServer } from "../helpers/s3Server.js";
import { CXX_THROW, LIB_MAIN, NULL_DEREF, compile, compileCxx, crashIn, librarySource, lineOf, stripCopy, tempDir } from "./symbols/crashFixture.js";

/** A local debuginfod serving `dir`, ready once it answers for `buildId`. */
async function startDebuginfod(dir: string, buildId: string, work: string): Promise<{ url: string; stop: () => Promise<void> }> {
  const port = await freePort();
  const db = path.join(work, "debuginfod.sqlite");
  const child: ChildProcess = spawn("debuginfod", ["-F", dir, "-p", String(port), "-d", db, "-t", "1"], { stdio: "ignore" });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    for (const f of await fs.readdir(work)) if (f.startsWith("debuginfod.sqlite")) await fs.rm(path.join(work, f), { force: true });
  };
  // Bounded wait for the first scan to index the directory.
  for (let i = 0; i < 150; i++) {
    const ok = await fetch(`${url}/buildid/${buildId}/debuginfo`).then(
      async (r) => {
        await r.body?.cancel();
        return r.status === 200;
      },
      () => false,
    );
    if (ok) return { url, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`debuginfod on ${url} did not index ${dir} within 15 s`);
}

const crashFrameOf = (r: Result) => ({ function: r.crash_frame?.function ?? null, file: r.crash_frame?.file ?? null, line: r.crash_frame?.line ?? null });

describe("analyzeDump", () => {
  let dir: string;
  let exePath: string;
  let core: string;
  let exeId: string;
  let unstripped: string;
  let stripped: string;
  let debugFile: string;
  let s3: S3TestServer;
  let jobN = 0;

  const base = (extra: Partial<AnalyzeDumpOptions> & { symbols?: AnalyzeDumpOptions["symbols"] } = {}) => {
    const workDir = path.join(dir, `job-${++jobN}`);
    return {
      core,
      workDir,
      timeoutMs: 60_000,
      ...extra,
      symbols: { cacheDir: path.join(dir, "cache"), cacheMaxBytes: 100 * 1024 * 1024, ...extra.symbols },
    } as AnalyzeDumpOptions & { workDir: string };
  };
  const run = async (opts: AnalyzeDumpOptions & { workDir: string }) => {
    await fs.mkdir(opts.workDir, { recursive: true });
    return analyzeDump(opts);
  };

  beforeAll(async () => {
    dir = await tempDir("symbolize");
    const build = path.join(dir, "build");
    await fs.mkdir(build);
    exePath = await compile(build, "crash", NULL_DEREF);
    core = await crashIn(build, exePath);
    exeId = (await readBuildId(exePath))!;
    // The build leaves this machine: keep the unstripped binary and a stripped + debug split elsewhere.
    const keep = path.join(dir, "artifacts");
    await fs.mkdir(keep);
    unstripped = path.join(keep, "crash");
    await fs.rename(exePath, unstripped);
    ({ stripped, debug: debugFile } = await stripCopy(unstripped, path.join(keep, "crash.stripped")));
    s3 = await startS3Server();
  });
  afterAll(async () => {
    await s3?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  const expected = () => ({ function: "crash_here", file: expect.stringMatching(/crash\.c$/), line: lineOf(NULL_DEREF, "CRASH LINE") });

  test("reference: with the unstripped executable given directly", async () => {
    const r = await run(base({ exe: unstripped }));
    expect(r.status).toBe("completed");
    expect(crashFrameOf(r)).toEqual(expected());
    expect(r.modules?.find((m) => m.build_id === exeId)).toMatchObject({ status: "found", source: "exe", file: unstripped });
    expect(r.symbolication).toMatchObject({ missing: 0, mismatched: 0, missing_build_ids: [] });
  });

  test("missing executable: completed, frames carry the module, its build-id is listed to upload", async () => {
    const r = await run(base({ symbols: { cacheDir: path.join(dir, "cache"), cacheMaxBytes: 1 << 20, order: ["exe", "host"] } }));
    expect(r.status).toBe("completed");
    const exeModule = r.modules?.find((m) => m.build_id === exeId);
    expect(exeModule).toMatchObject({ path: exePath, status: "missing", source: null, file: null });
    expect(r.symbolication?.missing_build_ids).toEqual([exeId]);
    // Named, with its build-id and the command that fixes it.
    expect(r.warnings).toContain(
      `executable ${exePath} (build-id ${exeId}) not found: upload the build with that build-id: coresight-worker symbols add <file> (or the executable with --exe)`,
    );
    const crash = r.threads.find((t) => t.number === r.crash_thread)!;
    const top = crash.frames[0]!;
    expect(top.function).toBeNull();
    expect(top.library).toBe(exePath);
    const offset = BigInt(top.address!) - BigInt(exeModule!.start!);
    expect(offset).toBeGreaterThan(0n); // module + offset
    // ... and the signature uses it, never the absolute address.
    expect(r.signature?.frames[0]).toBe(`${path.basename(exePath)}+0x${offset.toString(16)}`);
    expect(r.signature?.text).not.toContain(top.address!.replace(/^0x0*/, ""));
    expect(crash.frames.some((f: Frame) => f.function === "crash_here")).toBe(false);
    expect(r.quality).toBeLessThan(0.5);
  });

  test("when symbol resolution cannot run, the result says so instead of silently lacking symbols", async () => {
    // An s3:// store without an S3 client cannot be opened (the worker's config refuses it up front).
    const r = await run(base({ exe: unstripped, symbols: { cacheDir: path.join(dir, "cache-nos3"), cacheMaxBytes: 1 << 20, store: "s3://nowhere/store", s3: null } }));
    expect(r.status).toBe("completed");
    expect(r.warnings?.join("\n")).toMatch(/symbol resolution failed, analyzed without symbol files: .*s3/i);
    expect(r.modules).toBeUndefined();
  });

  test("a stripped executable alone: found, but listed among the build-ids without debug info", async () => {
    const r = await run(base({ exe: stripped, symbols: { cacheDir: path.join(dir, "cache-bare"), cacheMaxBytes: 1 << 20, order: ["exe", "host"] } }));
    expect(r.status).toBe("completed");
    expect(r.modules?.find((m) => m.build_id === exeId)).toMatchObject({ status: "found", source: "exe", symbols: expect.not.stringMatching(/^dwarf$/) });
    expect(r.symbolication?.missing_build_ids).not.toContain(exeId);
    expect(r.symbolication?.without_debug_info_build_ids).toContain(exeId);
  });

  test("debuginfod serving the unstripped build: stripped --exe gets the same crash frame", async () => {
    const served = path.join(dir, "served");
    await fs.mkdir(served);
    await fs.copyFile(unstripped, path.join(served, "crash"));
    const dfd = await startDebuginfod(served, exeId, dir);
    try {
      const cache = path.join(dir, "cache-dfd");
      const r = await run(base({ exe: stripped, symbols: { cacheDir: cache, cacheMaxBytes: 1 << 30, debuginfodUrls: dfd.url } }));
      expect(crashFrameOf(r)).toEqual(expected());
      expect(r.modules?.find((m) => m.build_id === exeId)).toMatchObject({ status: "found", source: "exe", file: stripped, debug_source: "debuginfod" });
      expect(r.symbolication?.without_debug_info_build_ids).not.toContain(exeId);
      expect(await fs.readdir(path.join(cache, "debuginfod", exeId))).toEqual(["debuginfo"]);

      // Without any executable: debuginfod's /executable is the file too.
      const r2 = await run(base({ symbols: { cacheDir: path.join(dir, "cache-dfd2"), cacheMaxBytes: 1 << 30, debuginfodUrls: dfd.url } }));
      expect(crashFrameOf(r2)).toEqual(expected());
      expect(r2.modules?.find((m) => m.build_id === exeId)).toMatchObject({ status: "found", source: "debuginfod" });

      // gdb's own debuginfod client alone (the worker's debuginfod rung left out of the order).
      const gdbCache = path.join(dir, "gdb-dfd-only");
      const r3 = await run(base({ exe: stripped, symbols: { cacheDir: gdbCache, cacheMaxBytes: 1 << 30, debuginfodUrls: dfd.url, gdbDebuginfod: true, order: ["exe", "host"] } }));
      expect(crashFrameOf(r3)).toEqual(expected());
      await expect(fs.readdir(path.join(gdbCache, "debuginfod"))).rejects.toThrow(/ENOENT/); // the worker fetched nothing
      const withoutClient = await run(base({ exe: stripped, symbols: { cacheDir: gdbCache, cacheMaxBytes: 1 << 30, debuginfodUrls: dfd.url, order: ["exe", "host"] } }));
      expect(withoutClient.crash_frame?.function ?? null).not.toBe("crash_here"); // so r3's names came from gdb's client
    } finally {
      await dfd.stop();
    }
  });

  test("symbol store on S3 (s3rver): same crash frame, cold then warm cache", async () => {
    await s3.createBucket("symbols-e2e");
    const location = "s3://symbols-e2e/builds";
    await addToStore([stripped, debugFile], openSymbolStore(location, s3.client));
    const cacheDir = path.join(dir, "cache-s3");
    const opts = () => base({ symbols: { store: location, s3: s3.client, cacheDir, cacheMaxBytes: 1 << 30 } });
    const cold = await run(opts());
    expect(crashFrameOf(cold)).toEqual(expected());
    expect(cold.modules?.find((m) => m.build_id === exeId)).toMatchObject({ status: "found", source: "symbol_store" });
    const entry = path.join(cacheDir, "symbol_store", exeId, "executable");
    const before = (await fs.stat(entry)).mtimeMs;
    await s3.stop(); // warm: the cache alone must do
    const warm = await run(opts());
    expect(crashFrameOf(warm)).toEqual(expected());
    expect((await fs.stat(entry)).mtimeMs).toBeGreaterThanOrEqual(before);
    s3 = await startS3Server();
  });

  test("symbol store on a local directory: same crash frame", async () => {
    const store = path.join(dir, "local-store");
    await addToStore([stripped, debugFile], new LocalSymbolStore(store));
    const r = await run(base({ symbols: { store, cacheDir: path.join(dir, "cache"), cacheMaxBytes: 1 << 20 } }));
    expect(crashFrameOf(r)).toEqual(expected());
    expect(r.modules?.find((m) => m.build_id === exeId)).toMatchObject({ status: "found", source: "symbol_store", file: path.join(store, exeId, "executable") });
  });

  test("a zstd-compressed dump is inventoried and analyzed like the raw core, and the decompressed copy removed", async () => {
    const zst = path.join(dir, "core.zst");
    await execa("zstd", ["-q", "-f", "-o", zst, core]);
    const store = path.join(dir, "local-store-zst");
    await addToStore([unstripped], new LocalSymbolStore(store));
    const opts = base({ symbols: { store, cacheDir: path.join(dir, "cache"), cacheMaxBytes: 1 << 20 } });
    const r = await run({ ...opts, core: zst });
    expect(crashFrameOf(r)).toEqual(expected());
    expect(r.symbolication).toMatchObject({ found: 3, missing: 0 });
    expect(r.core).toMatchObject({ size: (await fs.stat(zst)).size, compression: "zstd" });
    expect((await fs.readdir(opts.workDir)).filter((f) => f.startsWith("core"))).toEqual([]);
  });

  test("an --exe of another build is reported, not silently used or swapped", async () => {
    const d = path.join(dir, "wrong-exe");
    await fs.mkdir(d, { recursive: true });
    const other = await compile(d, "crash", NULL_DEREF.replace("CRASH LINE", "CRASH LINE, another build"));
    const r = await run(base({ exe: other, symbols: { cacheDir: path.join(dir, "cache"), cacheMaxBytes: 1 << 20, order: ["exe"] } }));
    expect(r.status).toBe("completed");
    expect(r.modules?.find((m) => m.build_id === exeId)).toMatchObject({ status: "mismatched", source: null });
    expect(r.warnings?.find((w) => w.startsWith(`executable ${exePath} (build-id ${exeId}): only other builds were found, not used: ${other} (exe, build-id `))).toBeDefined();
    expect(crashFrameOf(r).function).toBeNull();
  });

  test("a library of another build in the sysroot is mismatched, not used, and lends no names", async () => {
    const d = path.join(dir, "libcase");
    const build = path.join(d, "opt/app");
    await fs.mkdir(build, { recursive: true });
    const lib = await compile(build, "libcrash.so", librarySource("a"), ["-shared", "-fPIC"]);
    const app = await compile(build, "app", LIB_MAIN, [`-L${build}`, "-l:libcrash.so", `-Wl,-rpath,${build}`]);
    const libCore = await crashIn(build, app);
    const libId = await readBuildId(lib);
    const appCopy = path.join(d, "app.kept");
    await fs.rename(app, appCopy);
    await fs.rm(lib);
    // The "image": same path, another build whose code at every offset is an imposter function.
    const sysroot = path.join(d, "image");
    const imposterDir = path.join(sysroot, build);
    await fs.mkdir(imposterDir, { recursive: true });
    const body = Array.from({ length: 400 }, (_, i) => `  x = x * 31 + ${i};`).join("\n");
    const imposter = await compile(
      imposterDir,
      "libcrash.so",
      `int imposter_function(int x) {\n${body}\n  return x;\n}\nint lib_crash(int *p) { return imposter_function(*p); }\n`,
      ["-shared", "-fPIC"],
    );
    expect(await readBuildId(imposter)).not.toBe(libId);

    const r = await run({ ...base({ exe: appCopy }), core: libCore, sysroot });
    expect(r.status).toBe("completed");
    const m = r.modules?.find((x) => x.path === lib);
    expect(m).toMatchObject({ status: "mismatched", build_id: libId, file: imposter, source: null });
    expect(r.symbolication?.mismatched).toBe(1);
    expect(r.symbolication?.missing_build_ids).toContain(libId);
    const crash = r.threads.find((t) => t.number === r.crash_thread)!;
    expect(crash.frames[0]).toMatchObject({ function: null, library: lib });
    expect(JSON.stringify(r.threads)).not.toContain("imposter_function");
    expect(crash.frames.some((f) => f.function === "main")).toBe(true); // the app itself is symbolized
  });

  test("foreign architecture: an aarch64 core from qemu-user goes to gdb-multiarch", async () => {
    const script = path.resolve("scripts/build-aarch64-fixture.sh");
    const fx = path.join(dir, "fx");
    await execa("bash", [script], { env: { FIXTURES_OUT: fx } });
    const out = path.join(fx, "aarch64-null");
    const src = await fs.readFile(path.join(out, "null.c"), "utf8");
    const r = await run({ ...base({ exe: path.join(out, "null") }), core: path.join(out, "core") });
    expect(r.status).toBe("completed");
    expect(r.core?.architecture).toBe("aarch64");
    expect(crashFrameOf(r)).toEqual({ function: "crash_here", file: expect.stringMatching(/null\.c$/), line: lineOf(src, "CRASH LINE") });
    // qemu's core records no build-id: the explicit --exe is trusted, unverifiable.
    expect(r.modules?.[0]).toMatchObject({ build_id: null, status: "found", source: "exe" });
  });

  test("uncaught C++ exceptions: the thrown type, and what() where its layout is known", async () => {
    const d = path.join(dir, "cxx");
    await fs.mkdir(d);
    const app = await compileCxx(d, "thrower", CXX_THROW);
    const cases: Array<[string, { exception_type: string; exception_message: string | null }]> = [
      ["std", { exception_type: "std::runtime_error", exception_message: "config file missing: /etc/app.yaml" }],
      ["derived", { exception_type: "app::ConfigError", exception_message: "bad config: /etc/app.yaml" }],
      ["plain", { exception_type: "app::Plain", exception_message: null }],
    ];
    for (const [how, want] of cases) {
      const c = path.join(d, how);
      await fs.mkdir(c);
      const cxxCore = await crashIn(c, app, [how]);
      const r = await run({ ...base({ exe: app }), core: cxxCore });
      expect(r.status).toBe("completed");
      expect({ how, ...r.runtime }).toMatchObject({ how, ...want });
      expect(r.crash_frame?.function).toMatch(/app::fail/);
    }
  });
});

describe("one gdb process per core", () => {
  let dir: string;
  let wrapper: string;
  let counter: string;
  beforeAll(async () => {
    requireFixtures();
    dir = await tempDir("one-gdb");
    counter = path.join(dir, "gdb-starts");
    wrapper = path.join(dir, "gdb-counting");
    // Counts every gdb start, then becomes the real gdb.
    await fs.writeFile(wrapper, `#!/bin/sh\necho "$$" >> '${counter}'\nexec gdb "$@"\n`, { mode: 0o755 });
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const cases: Array<[FixtureName, Result["runtime"] | undefined]> = [
    ["cxx-uncaught", { exception_type: "std::runtime_error", exception_message: "config file missing: /etc/app/config.yaml" }],
    ["null-deref", undefined],
  ];
  for (const [name, runtime] of cases) {
    test(`${name}: exactly one gdb run, runtime ${runtime ? "from it" : "absent"}`, async () => {
      const f = fixture(name);
      await fs.rm(counter, { force: true });
      const workDir = path.join(dir, `job-${name}`);
      await fs.mkdir(workDir);
      const r = await analyzeDump({
        core: f.core,
        exe: f.exe,
        workDir,
        gdbPath: wrapper,
        timeoutMs: 60_000,
        symbols: { cacheDir: path.join(dir, "cache"), cacheMaxBytes: 1 << 30, order: ["exe", "host"] },
      });
      expect(r.status).toBe("completed");
      expect(r.runtime).toEqual(runtime);
      const starts = (await fs.readFile(counter, "utf8")).trim().split("\n");
      expect(starts).toHaveLength(1);
    });
  }
});
