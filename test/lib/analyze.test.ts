/**
 * analyzeDump, the one analysis path the worker and `analyze` run, against
 * real gdb on the real fixture cores (build them first: `make fixtures`).
 * Golden expectations in fixtures/golden/; UPDATE_GOLDEN=1 rewrites them.
 *
 * The golden runs take this machine's libraries but not its separate debug
 * files (hostDebugFiles: false), so that they do not depend on whether
 * libc6-dbg is installed: the fixtures carry their own DWARF, libc is named
 * by its dynamic symbols only.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { execa } from "execa";
import { analyzeDump, type AnalyzeDumpOptions, type SymbolsOptions } from "../../lib/analyze.js";
import { ResultSchema, type Result } from "../../lib/result.js";
import { ElfFile, PT_NOTE } from "../../lib/elf/file.js";
import { FIXTURE_NAMES, compressedCores, fixture, requireFixture, requireFixtures, strippedSymbols, type FixtureName } from "../helpers/fixtures.js";
import { expectGolden, stableResult, type Variance } from "../helpers/golden.js";
import { VERSION } from "../../lib/version.js";

let tmp: string;
/** Symbol sources of the golden runs: this machine's libraries, without its separate debug info. */
let noDebug: SymbolsOptions;
beforeAll(async () => {
  requireFixtures();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "analyze-test-"));
  noDebug = { cacheDir: path.join(tmp, "symbol-cache"), cacheMaxBytes: 1 << 30, hostDebugFiles: false };
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function analyze(opts: Partial<AnalyzeDumpOptions> & { core: string }): Promise<Result> {
  const r = await analyzeDump({ symbols: noDebug, ...opts });
  // Whatever happens, the result is a valid v1 document.
  expect(ResultSchema.safeParse(r).error).toBeUndefined();
  return r;
}

/**
 * How these cores vary from machine to machine, beyond what stableResult()
 * always takes out: Go starts sysmon, template and GC threads as it sees fit
 * (3 or 4 here from one build to the next); the frames of Rust's panic
 * machinery differ between rustc releases (16 with rustup's 1.95, 14 with
 * Debian's 1.63); a stack overflow's depth follows the stack the process
 * started with (477 frames deep in one build, 474 in the next). The crash
 * frame and signature do not.
 */
const VARIANCE: Partial<Record<FixtureName, Variance>> = {
  "go-nil-deref": { runtimeChoosesThreads: true },
  "rust-panic": { toolchainChoosesFrames: true },
  "stack-overflow": { stackDepthVaries: true },
  multithread: { otherThreadsRace: true },
};

describe("analyzeDump on the fixture cores (golden)", () => {
  for (const name of FIXTURE_NAMES) {
    test(name, async () => {
      const f = requireFixture(name);
      const r = await analyze({ core: f.core, exe: f.exe });
      expect(r.status).toBe("completed");
      expect(r.gdb?.version).toMatch(/GNU gdb/);
      expect(r.gdb?.truncated).toBe(false);
      // The golden is the whole production result (the worker stores this same object), machine taken out.
      await expectGolden(name, stableResult(r, VARIANCE[name]));
    });
  }
});

describe("the user's code is the crash frame", () => {
  // With the system's debug info (libc6-dbg, when installed) libc frames get
  // names and locals; the crash frame must not move.
  const cases: Array<[FixtureName, string]> = [
    ["abort-assert", "withdraw"],
    ["cxx-uncaught", "app::load_config"],
    ["rust-panic", "port_config::parse_port"],
    ["go-nil-deref", "main.parseHeader"],
    ["multithread", "parse_message"],
    ["external-kill", "wait_for_work"],
  ];
  for (const [name, fn] of cases) {
    test(`${name}: ${fn}`, async () => {
      const f = requireFixture(name);
      const r = await analyzeDump({ core: f.core, exe: f.exe });
      expect(r.crash_frame?.function).toBe(fn);
      expect(r.crash_frame?.file).toMatch(/fixtures\/crashes\//);
    });
  }

  // Without libc's debug info (no libc6-dbg, as on a fresh machine), frame #0
  // of an abort is `?? () from libc.so.6` (the static
  // __pthread_kill_implementation), above raise/abort: still machinery.
  for (const [name, fn] of cases.filter(([n]) => n !== "multithread" && n !== "go-nil-deref")) {
    test(`${name}: ${fn}, without libc's debug info`, async () => {
      const f = requireFixture(name);
      const r = await analyze({ core: f.core, exe: f.exe });
      expect(r.crash_frame?.function).toBe(fn);
    });
  }

  test("the uncaught C++ exception's type and what() land in runtime; no runtime for a C crash", async () => {
    const cxx = await analyze({ core: fixture("cxx-uncaught").core, exe: fixture("cxx-uncaught").exe });
    expect(cxx.runtime).toEqual({ exception_type: "std::runtime_error", exception_message: "config file missing: /etc/app/config.yaml" });
    const c = await analyze({ core: fixture("null-deref").core, exe: fixture("null-deref").exe });
    expect(c.runtime).toBeUndefined();
  });

  test("a Go panic: the panicking goroutine's frames on the signalled thread, and the panic message", async () => {
    const f = requireFixture("go-nil-deref");
    const r = await analyze({ core: f.core, exe: f.exe });
    expect(r.signal?.name).toBe("SIGABRT");
    expect(r.crash_frame).toMatchObject({ function: "main.parseHeader", line: 31 });
    expect(r.crash_frame?.file).toMatch(/fixtures\/crashes\/go-nil-deref\.go$/);
    const crash = r.threads.find((t) => t.crashed)!;
    const names = crash.frames.map((fr) => fr.function);
    // gdb's own frames of the signalled thread stay, above the handler marker.
    expect(names[0]).toBe("runtime.raise");
    expect(crash.frames.some((fr) => fr.signal_handler)).toBe(true);
    expect(names).toEqual(expect.arrayContaining(["runtime.sigpanic", "main.(*Server).handle", "main.(*Server).serve", "main.main", "runtime.goexit"]));
    expect(r.signature?.text).toBe("main.parseHeader | main.(*Server).handle | main.(*Server).serve | main.main");
    expect(r.runtime).toEqual({ panic_message: "runtime error: invalid memory address or nil pointer dereference" });
  });

  test("a Go core lists its goroutines: the panicking one, the runtime's and the program's two parked workers", async () => {
    const f = requireFixture("go-nil-deref");
    const r = await analyze({ core: f.core, exe: f.exe });
    const gs = r.goroutines ?? [];
    // main, forcegc, bgsweep, bgscavenge, runfinq and the fixture's two workers (what gdb's Go support lists).
    expect(gs).toHaveLength(7);
    const panicking = gs.filter((g) => g.panicking);
    expect(panicking).toMatchObject([{ goid: 1, status: "running", wait_reason: null }]);
    expect(panicking[0]!.frames.map((fr) => fr.function)).toContain("main.parseHeader");
    const workers = gs.filter((g) => g.frames.some((fr) => fr.function === "main.worker"));
    expect(workers).toHaveLength(2);
    for (const w of workers) expect(w).toMatchObject({ status: "waiting", wait_reason: "chan receive", panicking: false });
    expect(gs.map((g) => g.wait_reason)).toEqual(expect.arrayContaining(["force gc (idle)", "finalizer wait"]));
    expect(ResultSchema.parse(r).goroutines).toHaveLength(7);
    // A C core has none.
    expect((await analyze({ core: fixture("null-deref").core, exe: fixture("null-deref").exe })).goroutines).toBeUndefined();
  });

  test("killed from outside (SIGQUIT from another process): below libc's sleep, one signature with and without libc's debug info", async () => {
    const f = requireFixture("external-kill");
    const bare = await analyze({ core: f.core, exe: f.exe });
    const full = await analyzeDump({ core: f.core, exe: f.exe });
    for (const r of [bare, full]) {
      expect(r.signal).toMatchObject({ name: "SIGQUIT", code: "SI_USER", sender: { kind: "process" } });
      expect(r.crash_frame).toMatchObject({ function: "wait_for_work", line: 24 });
      expect(r.signature?.text).toBe("wait_for_work | run_worker | main");
    }
    expect(full.signature?.hash).toBe(bare.signature?.hash);
  });

  test("the assertion text lands in abort_message", async () => {
    const r = await analyze({ core: fixture("abort-assert").core });
    expect(r.abort_message).toContain('Assertion `w->balance >= 0 && "balance must never go negative"\' failed.');
    expect(r.abort_message).not.toMatch(/\n$/);
  });

  test("the multithread crash thread is the crasher, not main", async () => {
    const r = await analyze({ core: fixture("multithread").core });
    const crash = r.threads.find((t) => t.crashed)!;
    expect(r.threads).toHaveLength(5);
    expect(crash.frames.some((fr) => fr.function === "crasher")).toBe(true);
    expect(r.threads.filter((t) => t.crashed)).toHaveLength(1);
    const others = r.threads.filter((t) => !t.crashed).map((t) => t.frames.map((fr) => fr.function).join(" "));
    expect(others.filter((s) => /\bwaiter\b/.test(s))).toHaveLength(2);
    expect(others.filter((s) => /\bsleeper\b/.test(s))).toHaveLength(1);
    expect(others.filter((s) => /\bmain\b/.test(s))).toHaveLength(1);
  });
});

describe("inputs", () => {
  test("without --exe, the executable the core names is found", async () => {
    const r = await analyze({ core: fixture("div-zero").core });
    expect(r.crash_frame?.function).toBe("average");
    expect(r.core?.command_line).toBe("./div-zero");
  });

  test("with no symbol source at all, the core alone is analyzed", async () => {
    const r = await analyze({ core: fixture("div-zero").core, symbols: { ...noDebug, order: [] } });
    expect(r.status).toBe("completed");
    expect(r.crash_frame?.function ?? null).toBeNull();
    expect(r.signal?.code).toBe("FPE_INTDIV");
  });

  test("gzip and zstd dumps are decompressed into workDir and cleaned up", async () => {
    const plain = await analyze({ core: fixture("null-deref").core });
    for (const c of [compressedCores.gzip, compressedCores.zstd]) {
      const work = await fs.mkdtemp(path.join(tmp, "work-"));
      const r = await analyze({ core: c, workDir: work, exe: fixture("null-deref").exe });
      expect(r.status).toBe("completed");
      expect(r.signature).toEqual(plain.signature);
      expect(r.core?.size).toBe((await fs.stat(c)).size);
      expect(r.core?.compression).toBe(c === compressedCores.gzip ? "gzip" : "zstd");
      expect(r.core?.truncated).toBe(false);
      // The job directory keeps the symbol tree; the decompressed core is gone.
      expect((await fs.readdir(work)).filter((f) => f.startsWith("core"))).toEqual([]);
    }
  });

  test("stripped binary: ?? frames with their module, then named with its split debug info from a symbol store", async () => {
    const f = fixture("stripped");
    const bare = await analyze({ core: f.core, exe: f.exe });
    expect(bare.crash_frame?.function ?? null).toBeNull();
    expect(bare.crash_frame?.library).toBe(f.exe);
    // A directory symbol store: <build-id>/debuginfo (what `coresight-worker symbols add` writes).
    const store = path.join(tmp, "store-stripped");
    const id = (await fs.readFile(strippedSymbols.buildIdFile, "utf8")).trim();
    await fs.mkdir(path.join(store, id), { recursive: true });
    await fs.copyFile(strippedSymbols.debug, path.join(store, id, "debuginfo"));
    const named = await analyze({ core: f.core, exe: f.exe, symbols: { ...noDebug, store } });
    expect(named.crash_frame).toMatchObject({ function: "store_total", line: expect.any(Number) });
    expect(named.quality).toBeGreaterThan(bare.quality);
  });
});

describe("bad inputs are failed results, never exceptions", () => {
  async function cut(bytes: number | "half"): Promise<string> {
    const src = fixture("null-deref").core;
    const size = (await fs.stat(src)).size;
    const n = bytes === "half" ? Math.floor(size / 2) : bytes;
    const out = path.join(tmp, `cut-${bytes}`);
    const fh = await fs.open(src, "r");
    const buf = Buffer.alloc(n);
    await fh.read(buf, 0, n, 0);
    await fh.close();
    await fs.writeFile(out, buf);
    return out;
  }

  /** A core option naming a file of these bytes in the test's directory. */
  async function written(name: string, bytes: string | Buffer): Promise<{ core: string }> {
    const p = path.join(tmp, name);
    await fs.writeFile(p, bytes);
    return { core: p };
  }

  const cases: Array<[string, () => Promise<Partial<AnalyzeDumpOptions> & { core: string }>, string]> = [
    ["nonexistent core", async () => ({ core: path.join(tmp, "does-not-exist") }), "file_not_found"],
    ["zero-byte file", () => written("empty", ""), "empty_file"],
    ["a text file", () => written("notes.txt", "Core was generated by `nothing'.\n"), "not_a_core"],
    ["an ELF executable", async () => ({ core: fixture("null-deref").exe }), "not_a_core"],
    ["the first 1 KB of a core", async () => ({ core: await cut(1024) }), "truncated_core"],
    ["a corrupt gzip stream", () => written("bad.gz", Buffer.from([0x1f, 0x8b, 0x08, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9])), "not_a_core"],
    ["a corrupt zstd stream", () => written("bad.zst", Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4, 5, 6, 7, 8, 9])), "not_a_core"],
    ["missing --exe", async () => ({ core: fixture("null-deref").core, exe: path.join(tmp, "no-such-exe") }), "executable_not_found"],
    ["gdb not installed", async () => ({ core: fixture("null-deref").core, gdbPath: "/nonexistent/gdb" }), "gdb_not_installed"],
    ["a tiny timeout", async () => ({ core: fixture("multithread").core, timeoutMs: 20 }), "gdb_timeout"],
  ];
  for (const [what, input, code] of cases) {
    test(`${what} → ${code}`, async () => {
      const r = await analyze(await input());
      expect(r.status).toBe("failed");
      expect(r.error?.code).toBe(code);
      expect(r.error?.message.length).toBeGreaterThan(10);
    });
  }

  test("a core cut in half still gives the crash frame (registers are in the notes)", async () => {
    const r = await analyze({ core: await cut("half"), exe: fixture("null-deref").exe });
    expect(r.status).toBe("completed");
    expect(r.crash_frame?.function).toBe("store_total");
    // ... and says the core was cut, so nobody trusts missing frames.
    expect(r.core?.truncated).toBe(true);
  });

  test("a core cut inside its notes is truncated_core, from what gdb says", async () => {
    const elf = await ElfFile.open(fixture("null-deref").core);
    const note = (await elf.programHeaders()).find((p) => p.type === PT_NOTE)!;
    await elf.close();
    const r = await analyze({ core: await cut(note.offset + 16), exe: fixture("null-deref").exe });
    expect(r.status).toBe("failed");
    expect(r.error?.code).toBe("truncated_core");
    expect(r.error?.message).toMatch(/gdb found no thread/);
    expect(r.gdb?.version).toMatch(/GNU gdb/);
  });

  test("a deep stack cut at the frame limit says so on the crash thread", async () => {
    const f = fixture("stack-overflow");
    const r = await analyze({ core: f.core, exe: f.exe, maxFrames: 50 });
    const crash = r.threads.find((t) => t.crashed)!;
    expect(crash.frames).toHaveLength(50);
    expect(crash.frames_truncated).toBe(true);
    const shallow = await analyze({ core: fixture("null-deref").core, exe: fixture("null-deref").exe });
    expect(shallow.threads.find((t) => t.crashed)!.frames_truncated).toBeUndefined();
  });

  test("an output cap marks the result truncated", async () => {
    const f = fixture("stack-overflow");
    const r = await analyze({ core: f.core, exe: f.exe, maxOutputBytes: 6000 });
    expect(r.gdb?.truncated).toBe(true);
  });

  test("an abort rejects instead of producing a result", async () => {
    const ac = new AbortController();
    ac.abort(new Error("worker stopping"));
    await expect(analyzeDump({ core: fixture("null-deref").core, signal: ac.signal })).rejects.toThrow("worker stopping");
  });
});

describe("safety", () => {
  test("scripts auto-loaded from the binary never run", async () => {
    const f = fixture("autoload");
    const markers = ["AUTOLOADED-section", "AUTOLOADED-file"].map((m) => `${f.exe}.${m}`);
    for (const m of markers) await fs.rm(m, { force: true });
    const r = await analyze({ core: f.core, exe: f.exe });
    expect(r.crash_frame?.function).toBe("crash_here");
    for (const m of markers) expect(await fs.stat(m).catch(() => null)).toBeNull();
  });

  test("control: with auto-load on, the same fixture does create both markers", async () => {
    // Proves the test above can fail: the fixture's scripts are live.
    const f = fixture("autoload");
    const markers = ["AUTOLOADED-section", "AUTOLOADED-file"].map((m) => `${f.exe}.${m}`);
    try {
      await execa("gdb", ["-nx", "-nh", "-batch", "-iex", "set auto-load safe-path /", "-ex", `file ${f.exe}`, "-ex", `core-file ${f.core}`], { reject: false, stdin: "ignore" });
      for (const m of markers) expect(await fs.stat(m).catch(() => null)).not.toBeNull();
    } finally {
      for (const m of markers) await fs.rm(m, { force: true });
    }
  });
});

describe("timings", () => {
  test("onTimings reports gdb time within the total", async () => {
    let t: { totalMs: number; gdbMs: number } | undefined;
    const r = await analyze({ core: fixture("null-deref").core, onTimings: (x) => (t = x) });
    expect(t!.gdbMs).toBe(r.gdb!.duration_ms);
    expect(t!.totalMs).toBeGreaterThanOrEqual(t!.gdbMs);
  });
});

describe("provenance", () => {
  test("every result says when it was analyzed and by which version, completed or failed", async () => {
    const before = Date.now();
    const ok = await analyze({ core: fixture("null-deref").core, exe: fixture("null-deref").exe });
    const bad = await analyze({ core: path.join(tmp, "no-such-core") });
    for (const r of [ok, bad]) {
      expect(Date.parse(r.analyzed_at!)).toBeGreaterThanOrEqual(before - 1000);
      expect(r.worker).toEqual({ version: VERSION, host: os.hostname() });
    }
    expect(bad.error?.code).toBe("file_not_found");
  });
});

describe("no path of the worker in a result", () => {
  test("no fixture's result mentions the job directory its symbol tree was built in", async () => {
    for (const name of FIXTURE_NAMES) {
      const f = requireFixture(name);
      const workDir = await fs.mkdtemp(path.join(tmp, `job-${name}-`));
      const r = await analyze({ core: f.core, exe: f.exe, workDir });
      expect(r.status).toBe("completed");
      const text = JSON.stringify(r);
      expect({ name, leaks: text.includes(workDir) }).toEqual({ name, leaks: false });
      // Libraries by the paths the crashed process had.
      expect(r.shared_libraries.every((l) => !l.path.includes("/symbols/"))).toBe(true);
    }
  });
});

describe("registers and disassembly", () => {
  test("the crash thread's registers and the faulting instruction are in the result", async () => {
    const r = await analyze({ core: fixture("null-deref").core, exe: fixture("null-deref").exe });
    expect(r.registers?.rip).toMatch(/^0x[0-9a-f]+$/);
    expect(r.registers?.rax).toMatch(/^0x[0-9a-f]+$/);
    const faulting = r.disassembly?.find((l) => l.startsWith("=>"));
    expect(faulting).toMatch(/^=> 0x[0-9a-f]+ <store_total\+\d+>:/);
    // The faulting pc is the crash frame's.
    expect(faulting).toContain(r.crash_frame!.address!.replace(/^0x0*/, "0x"));
  });
});
