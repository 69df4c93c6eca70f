/**
 * Inputs that are not regular files: a FIFO given as the core must not block
 * `analyze` forever (a plain open waits for a writer), a symlink loop is an
 * input error rather than internal_error (issue 9).
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { execa } from "execa";
import { inspectCore } from "../../lib/core/inspect.js";
import { ResultSchema } from "../../lib/result.js";
import { analyzeCommand, type AnalyzeIo } from "../../worker/commands/analyze.js";

let tmp: string;
let fifo: string;
let loop: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "hostile-inputs-"));
  fifo = path.join(tmp, "core.fifo");
  await execa("mkfifo", [fifo]);
  loop = path.join(tmp, "loop-a");
  await fs.symlink(path.join(tmp, "loop-b"), loop);
  await fs.symlink(loop, path.join(tmp, "loop-b"));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function analyze(core: string) {
  const io: AnalyzeIo & { out: string } = { out: "", env: { WORK_DIR: path.join(tmp, "work"), DEBUGINFOD_URLS: "" }, stdout: (s) => void (io.out += s), stderr: () => undefined };
  const code = await analyzeCommand([core, "--json"], io);
  return { code, result: ResultSchema.parse(JSON.parse(io.out)) };
}

describe("inputs that are not regular files are refused before they are read", () => {
  // Before the fix this test never finished: jest's timeout is what would fail it.
  test("a FIFO as the core: invalid_input, exit 5, and the FIFO was never waited on", async () => {
    const { code, result } = await analyze(fifo);
    expect(result.error?.code).toBe("invalid_input");
    expect(result.error?.message).toMatch(/FIFO/);
    expect(code).toBe(5);
  }, 30_000);

  test("a symlink loop as the core: invalid_input (not internal_error), exit 5", async () => {
    const { code, result } = await analyze(loop);
    expect(result.error?.code).toBe("invalid_input");
    expect(result.error?.message).toMatch(/symlink loop/);
    expect(code).toBe(5);
  });

  test("inspectCore refuses a character device", async () => {
    await expect(inspectCore("/dev/zero")).rejects.toMatchObject({ code: "invalid_input" });
  });
});
