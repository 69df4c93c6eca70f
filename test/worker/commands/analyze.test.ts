import { beforeAll, describe, expect, test } from "@jest/globals";
import { UsageError } from "../../../worker/command.js";
import { analyzeCommand, type AnalyzeIo } from "../../../worker/commands/analyze.js";
import { ResultSchema } from "../../../lib/result.js";
import { fixture, requireFixtures } from "../../helpers/fixtures.js";

beforeAll(() => requireFixtures());

function capture(env: Record<string, string | undefined> = {}): AnalyzeIo & { out: string; err: string } {
  const io = {
    out: "",
    err: "",
    env,
    stdout: (s: string) => void (io.out += s),
    stderr: (s: string) => void (io.err += s),
  };
  return io;
}

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
});
