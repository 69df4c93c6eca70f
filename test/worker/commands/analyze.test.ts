import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { UsageError } from "../../../worker/command.js";
import { analyzeCommand, renderResult } from "../../../worker/commands/analyze.js";
import { ResultSchema } from "../../../lib/result.js";
import { addToStore } from "../../../lib/symbols/add.js";
import { openSymbolStore } from "../../../lib/symbols/store.js";
import { captureIo } from "../../helpers/commandIo.js";
import { fixture, requireFixture, requireFixtures, strippedSymbols } from "../../helpers/fixtures.js";
import { NULL_DEREF, compile, crashIn } from "../../lib/symbols/crashFixture.js";

let tmp: string;
let workDir: string;
beforeAll(async () => {
  requireFixtures();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "analyze-command-test-"));
  workDir = path.join(tmp, "work");
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** The command's I/O; WORK_DIR (job directories, symbol cache) in this suite's temp dir unless `env` sets it. */
const capture = (env: Record<string, string | undefined> = {}) => captureIo(workDir, env);

describe("a command line with a newline (argv is the crashed process's to choose)", () => {
  test("kept whole as data in --json; one escaped line in the summary, which a fake line cannot enter", async () => {
    const d = path.join(tmp, "newline");
    await fs.mkdir(d, { recursive: true });
    const exe = await compile(d, "prog", NULL_DEREF);
    const core = await crashIn(d, exe, ["x\nsignal:  SIGKILL\tfake"]);
    const json = capture();
    expect(await analyzeCommand(["--json", core, "--exe", exe], json)).toBe(0);
    const r = ResultSchema.parse(JSON.parse(json.out));
    // NT_PRPSINFO keeps argv's first 79 bytes, newline included; gdb's banner line stops at the newline.
    expect(r.core?.command_line).toBe(`${exe} x\nsignal:  SIGKILL\tfake`);
    const text = capture();
    expect(await analyzeCommand([core, "--exe", exe], text)).toBe(0);
    const lines = text.out.split("\n");
    expect(lines.filter((l) => l.startsWith("signal:"))).toEqual([expect.stringMatching(/^signal: +SIGSEGV/)]);
    expect(lines.find((l) => l.startsWith("command line:"))).toBe(`command line: ${exe} x\\nsignal:  SIGKILL\\tfake`);
  });
});

describe("coresight-worker analyze", () => {
  test("human summary of an assert crash", async () => {
    const f = fixture("abort-assert");
    const io = capture();
    expect(await analyzeCommand([f.core, "--exe", f.exe], io)).toBe(0);
    expect(io.out).toMatch(/^core: +.*abort-assert\/core, \d+ KiB, x86_64$/m);
    expect(io.out).toMatch(/^signal: +SIGABRT \(SI_TKILL\) — Aborted/m);
    expect(io.out).toMatch(/^crash thread: 1 \(LWP \d+\)/m);
    expect(io.out).toMatch(/^crash frame: +#\d+ withdraw at .*abort-assert\.c:17$/m);
    expect(io.out).toMatch(/→ #\d+ +withdraw/);
    expect(io.out).toMatch(/^abort: +abort-assert: .*Assertion `w->balance >= 0/m);
    expect(io.out).toMatch(/^signature: +[0-9a-f]{16}  withdraw \| pay_invoice \| main$/m);
    expect(io.out).toMatch(/^gdb: +GNU gdb .*, \d+ ms of \d+ ms total$/m);
    expect(io.err).toBe("");
  });

  test("a Go panic, executable found by its GNU build-id: the user's function and the panic message", async () => {
    const io = capture();
    expect(await analyzeCommand(["--json", requireFixture("go-nil-deref").core], io)).toBe(0);
    const r = ResultSchema.parse(JSON.parse(io.out));
    expect(r.crash_frame).toMatchObject({ function: "main.parseHeader", line: 31 });
    expect(r.runtime?.panic_message).toBe("runtime error: invalid memory address or nil pointer dereference");
    // The human summary lists the goroutines, the panicking one marked.
    const text = capture();
    expect(await analyzeCommand([requireFixture("go-nil-deref").core], text)).toBe(0);
    expect(text.out).toMatch(/^goroutines: {3}7 \(1 running, 6 waiting\)$/m);
    expect(text.out).toMatch(/^ +\* 1 +running +main\.parseHeader fixtures\/crashes\/go-nil-deref\.go:31$/m);
    expect(text.out.match(/chan receive +main\.worker/g)).toHaveLength(2);
    expect(r.modules?.find((m) => m.path.endsWith("/go-nil-deref"))).toMatchObject({ status: "found" });
  });

  test("--json prints a valid v1 result", async () => {
    const f = fixture("div-zero");
    const io = capture();
    expect(await analyzeCommand(["--json", f.core], io)).toBe(0);
    const r = ResultSchema.parse(JSON.parse(io.out));
    expect(r.status).toBe("completed");
    expect(r.signal?.code).toBe("FPE_INTDIV");
    expect(r.crash_frame?.function).toBe("average");
  });

  test("a missing core exits 5 with the code on stderr", async () => {
    const io = capture();
    expect(await analyzeCommand(["/nonexistent/core"], io)).toBe(5);
    expect(io.err).toMatch(/failed: file_not_found: core file not found: \/nonexistent\/core/);
    expect(io.out).toBe("");
  });

  test("a missing --exe exits 5", async () => {
    const io = capture();
    expect(await analyzeCommand([fixture("null-deref").core, "--exe", "/nonexistent/exe"], io)).toBe(5);
    expect(io.err).toMatch(/executable_not_found/);
  });

  test("gdb not installed exits 4; --json still prints the failed result", async () => {
    const io = capture();
    expect(await analyzeCommand([fixture("null-deref").core, "--gdb", "/nonexistent/gdb", "--json"], io)).toBe(4);
    const r = ResultSchema.parse(JSON.parse(io.out));
    expect(r.status).toBe("failed");
    expect(r.error?.code).toBe("gdb_not_installed");
  });

  test("GDB_PATH from the environment is the default gdb", async () => {
    const io = capture({ GDB_PATH: "/nonexistent/gdb-from-env" });
    expect(await analyzeCommand([fixture("null-deref").core], io)).toBe(4);
    expect(io.err).toContain("/nonexistent/gdb-from-env");
  });

  test("a file that is not a core exits 1", async () => {
    const io = capture();
    expect(await analyzeCommand([fixture("null-deref").exe], io)).toBe(1);
    expect(io.err).toMatch(/failed: not_a_core: /);
  });

  test("--timeout is honoured", async () => {
    const io = capture();
    expect(await analyzeCommand([fixture("multithread").core, "--timeout", "0.02"], io)).toBe(1);
    expect(io.err).toMatch(/gdb_timeout/);
  });

  test("usage errors", async () => {
    await expect(analyzeCommand([], capture())).rejects.toBeInstanceOf(UsageError);
    await expect(analyzeCommand(["a", "b"], capture())).rejects.toBeInstanceOf(UsageError);
    await expect(analyzeCommand(["core", "--timeout", "soon"], capture())).rejects.toThrow(/--timeout/);
    await expect(analyzeCommand(["core", "--max-frames", "0"], capture())).rejects.toThrow(/--max-frames/);
    await expect(analyzeCommand(["core", "--frobnicate"], capture())).rejects.toThrow(/unknown option --frobnicate/);
  });

  test("--help lists examples and exit codes", async () => {
    const io = capture();
    expect(await analyzeCommand(["--help"], io)).toBe(0);
    expect(io.out).toMatch(/Examples:/);
    expect(io.out).toMatch(/Exit codes:\n\s+0 /);
  });

  test("the job directory is removed afterwards", async () => {
    const io = capture();
    expect(await analyzeCommand([fixture("null-deref").core], io)).toBe(0);
    expect(await fs.readdir(path.join(workDir, "jobs"))).toEqual([]);
  });

  test("an s3:// symbol store without S3 credentials is a configuration error", async () => {
    const io = capture();
    expect(await analyzeCommand([fixture("null-deref").core, "--symbol-store", "s3://symbols/app"], io)).toBe(3);
    expect(io.err).toMatch(/symbol store s3:\/\/symbols\/app is on S3 but no S3 client is configured/);
    expect(io.out).toBe("");
  });
});

describe("coresight-worker analyze: the worker's symbol resolution", () => {
  const f = fixture("stripped");
  let store: string;
  let buildId: string;
  beforeAll(async () => {
    // What CI does after a build: `coresight-worker symbols add` of the unstripped binary.
    store = path.join(tmp, "store");
    const added = await addToStore([strippedSymbols.full], openSymbolStore(store, null));
    expect(added[0]?.error).toBeUndefined();
    buildId = added[0]!.build_id!;
  });

  test("stripped core without a store: the crash frame is unnamed", async () => {
    const io = capture();
    expect(await analyzeCommand([f.core, "--json"], io)).toBe(0);
    const r = ResultSchema.parse(JSON.parse(io.out));
    expect(r.crash_frame?.function ?? null).toBeNull();
    expect(r.symbolication).toMatchObject({ missing: 0, mismatched: 0 });

    const human = capture();
    expect(await analyzeCommand([f.core], human)).toBe(0);
    expect(human.out).toMatch(/^symbols: +[1-9]\d* found, 0 missing, 0 mismatched$/m);
    expect(human.out).not.toContain("build-ids to upload");
  });

  test("--symbol-store names the crash frame store_total, as the worker would", async () => {
    const io = capture();
    expect(await analyzeCommand([f.core, "--symbol-store", store, "--json"], io)).toBe(0);
    const r = ResultSchema.parse(JSON.parse(io.out));
    expect(r.crash_frame?.function).toBe("store_total");
    expect(r.modules?.find((m) => m.build_id === buildId)).toMatchObject({ status: "found" });

    const human = capture();
    expect(await analyzeCommand([f.core, "--symbol-store", store], human)).toBe(0);
    expect(human.out).toMatch(/^crash frame: +#\d+ store_total/m);
    expect(human.out).not.toContain(buildId);
  });

  test("--symbol-store overrides SYMBOL_STORE", async () => {
    const io = capture({ SYMBOL_STORE: path.join(tmp, "empty-store") });
    expect(await analyzeCommand([f.core, "--symbol-store", store, "--json"], io)).toBe(0);
    expect(ResultSchema.parse(JSON.parse(io.out)).crash_frame?.function).toBe("store_total");
  });
});

describe("coresight-worker analyze --debuginfod", () => {
  const f = fixture("stripped");
  let server: http.Server;
  let url: string;
  let requests: string[];
  beforeAll(async () => {
    // A real HTTP server speaking the one debuginfod request the worker makes for this build.
    const id = (await fs.readFile(strippedSymbols.buildIdFile, "utf8")).trim();
    requests = [];
    server = http.createServer((req, res) => {
      requests.push(req.url ?? "");
      if (req.url === `/buildid/${id}/debuginfo`) {
        void fs.readFile(strippedSymbols.debug).then((b) => res.end(b));
        return;
      }
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });
  // A fresh WORK_DIR each: the symbol cache under it must not answer for the server.
  const fresh = async (name: string) => ({ WORK_DIR: await fs.mkdtemp(path.join(tmp, `${name}-`)) });

  test("--debuginfod URL names the crash frame from the server", async () => {
    const io = capture(await fresh("dfd"));
    expect(await analyzeCommand([f.core, "--debuginfod", url, "--json"], io)).toBe(0);
    expect(ResultSchema.parse(JSON.parse(io.out)).crash_frame?.function).toBe("store_total");
  });

  test('--debuginfod "" overrides DEBUGINFOD_URLS: no request, no name', async () => {
    requests = [];
    const io = capture({ ...(await fresh("no-dfd")), DEBUGINFOD_URLS: url });
    expect(await analyzeCommand([f.core, "--debuginfod", "", "--json"], io)).toBe(0);
    expect(ResultSchema.parse(JSON.parse(io.out)).crash_frame?.function ?? null).toBeNull();
    expect(requests).toEqual([]);
  });

  test("DEBUGINFOD_URLS is the default", async () => {
    requests = [];
    const io = capture({ ...(await fresh("env-dfd")), DEBUGINFOD_URLS: url });
    expect(await analyzeCommand([f.core, "--json"], io)).toBe(0);
    expect(ResultSchema.parse(JSON.parse(io.out)).crash_frame?.function).toBe("store_total");
    expect(requests.length).toBeGreaterThan(0);
  });
});

describe("coresight-worker analyze: what only the worker's analysis adds", () => {
  test("an uncaught C++ exception: its type and what()", async () => {
    const f = fixture("cxx-uncaught");
    const io = capture();
    expect(await analyzeCommand([f.core, "--exe", f.exe], io)).toBe(0);
    expect(io.out).toMatch(/^exception: +uncaught std::runtime_error: config file missing: \/etc\/app\/config\.yaml$/m);
  });

  test("modules without a matching file: their build-ids, to upload with `symbols add`", async () => {
    const io = capture();
    expect(await analyzeCommand([fixture("null-deref").core, "--json"], io)).toBe(0);
    const r = ResultSchema.parse(JSON.parse(io.out));
    const id = "0123456789abcdef0123456789abcdef01234567";
    const missing = {
      ...r,
      modules: [...(r.modules ?? []), { path: "/usr/lib/libgone.so.1", build_id: id, start: null, end: null, status: "missing" as const, source: null, file: null }],
      symbolication: { found: 3, missing: 1, mismatched: 0, missing_build_ids: [id] },
    };
    const text = renderResult(missing, "core");
    expect(text).toMatch(/^symbols: +3 found, 1 missing, 0 mismatched$/m);
    expect(text).toMatch(/^ +build-ids to upload \(coresight-worker symbols add\):\n +0123456789abcdef0123456789abcdef01234567  \/usr\/lib\/libgone\.so\.1$/m);
  });

  test("a core cut in half still analyzes, and says it is truncated", async () => {
    // Cut in half, null-deref's core keeps its notes (registers): the crash frame survives.
    const f = fixture("null-deref");
    const cut = path.join(tmp, "cut-core");
    const data = await fs.readFile(f.core);
    await fs.writeFile(cut, data.subarray(0, Math.floor(data.length / 2)));
    const io = capture();
    expect(await analyzeCommand([cut, "--exe", f.exe], io)).toBe(0);
    expect(io.out).toMatch(/^core: +.*cut-core.*\n +core file is truncated: frames may be missing$/m);
    expect(io.out).toMatch(/^crash frame: +#0 store_total/m);
    const whole = capture();
    expect(await analyzeCommand([f.core, "--exe", f.exe], whole)).toBe(0);
    expect(whole.out).not.toContain("truncated");
  });
});
