/**
 * Every real-world backtrace in fixtures/backtraces/ against its
 * expectations, through the library and through the `parse` command.
 */
import { describe, expect, it } from "@jest/globals";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseBacktrace } from "../../../lib/gdb/parseBacktrace.js";
import { summarize, type Summary } from "../../../lib/gdb/summarize.js";
import type { Frame } from "../../../lib/result.js";
import { parseCommand } from "../../../worker/commands/parse.js";

const DIR = join(process.cwd(), "fixtures", "backtraces");
const names = readdirSync(DIR)
  .filter((f) => f.endsWith(".txt"))
  .map((f) => f.slice(0, -4))
  .sort();

interface Expected {
  threads: number;
  crash_thread: number | null;
  frame0: Pick<Frame, "function" | "file" | "line" | "library"> | null;
  crash_frame?: Pick<Frame, "function" | "file" | "line" | "library"> | null;
  signal: string | null;
}

function check(s: Summary, exp: Expected) {
  const crash = s.threads.find((t) => t.crashed);
  const pick = (f: Frame | null | undefined) => (f ? { function: f.function, file: f.file, line: f.line, library: f.library } : null);
  expect({
    threads: s.threads.length,
    crash_thread: s.crash_thread,
    frame0: pick(crash?.frames[0]),
    ...(exp.crash_frame !== undefined ? { crash_frame: pick(s.crash_frame) } : {}),
    signal: s.signal?.name ?? null,
  }).toEqual(exp);
}

describe("real-world backtrace corpus", () => {
  it("has at least 12 backtraces, each with expectations", () => {
    expect(names.length).toBeGreaterThanOrEqual(12);
    for (const n of names) expect(() => readFileSync(join(DIR, `${n}.expected.json`), "utf8")).not.toThrow();
  });

  describe.each(names)("%s", (name) => {
    const text = readFileSync(join(DIR, `${name}.txt`), "utf8");
    const exp = JSON.parse(readFileSync(join(DIR, `${name}.expected.json`), "utf8")) as Expected;

    it("parses as expected", () => {
      const s = summarize(parseBacktrace(text));
      check(s, exp);
      // Invariants that hold for any input.
      expect(s.quality).toBeGreaterThanOrEqual(0);
      expect(s.quality).toBeLessThanOrEqual(1);
      if (s.threads.length > 0) expect(s.signature?.hash).toMatch(/^[0-9a-f]{16}$/);
      expect(s.signature?.text ?? "").not.toMatch(/0x[0-9a-f]{4,}/);
    });

    it("gives the same answer through `parse --json`", async () => {
      let out = "";
      const code = await parseCommand([join(DIR, `${name}.txt`), "--json"], {
        stdout: (s) => void (out += s),
        stderr: () => undefined,
        stdin: async () => "",
      });
      expect(code).toBe(0);
      check(JSON.parse(out) as Summary, exp);
    });
  });
});
