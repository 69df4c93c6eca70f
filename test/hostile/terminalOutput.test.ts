/**
 * Function names, thread names and paths in a backtrace are the crashed
 * program's bytes: human output must not let them drive the terminal
 * (issue 9, lower priority). JSON output keeps them as they are.
 */
import { describe, expect, test } from "@jest/globals";
import { parseCommand, printable, type ParseIo } from "../../worker/commands/parse.js";

const HOSTILE = [
  'Thread 1 (Thread 0x7f00 (LWP 42) "a\x1b[2Jb"):',
  "#0  0x0000000000401136 in \x1b]0;pwned\x07evil\r () at x\u202e.c:3",
  "#1  0x0000000000401150 in main () at x.c:9",
  "",
].join("\n");

function io(stdin: string): ParseIo & { out: string } {
  const x = { out: "", stdout: (s: string) => void (x.out += s), stderr: () => undefined, stdin: async () => stdin };
  return x;
}

describe("human output shows the program's control characters, never sends them", () => {
  test("printable escapes C0/C1 controls, ESC, CR and bidi overrides; keeps newlines and tabs", () => {
    expect(printable("a\x1b[31mb\rc\u202ed\te\nf\x9b")).toBe("a\\x1b[31mb\\x0dc\\u202ed\te\nf\\x9b");
  });

  test("parse: no escape sequence reaches the terminal; --json keeps the bytes", async () => {
    const human = io(HOSTILE);
    expect(await parseCommand([], human)).toBe(0);
    expect(human.out).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]/);
    expect(human.out).toContain("\\x1b]0;pwned\\x07evil");
    const json = io(HOSTILE);
    expect(await parseCommand(["--json"], json)).toBe(0);
    expect(JSON.parse(json.out).crash_frame.function).toContain("\x1b]0;pwned");
  });
});
