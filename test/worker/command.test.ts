/** parseArgs: the option grammar every command shares, and its usage errors. */
import { describe, expect, it } from "@jest/globals";
import { EXIT, parseArgs, UsageError } from "../../worker/command.js";

const SPEC = { flags: ["json", "fresh"], options: ["exe", "timeout"] };

function parsed(argv: string[], spec: { flags?: string[]; options?: string[] } = SPEC) {
  const r = parseArgs(argv, spec);
  return { flags: [...r.flags].sort(), options: Object.fromEntries(r.options), positionals: r.positionals };
}

function usageError(argv: string[], spec: { flags?: string[]; options?: string[] } = SPEC): string {
  try {
    parseArgs(argv, spec);
  } catch (e: unknown) {
    expect(e).toBeInstanceOf(UsageError);
    expect((e as Error).name).toBe("UsageError");
    return (e as Error).message;
  }
  throw new Error(`parseArgs(${JSON.stringify(argv)}) did not throw`);
}

describe("parseArgs", () => {
  it("nothing in, nothing out", () => {
    expect(parsed([])).toEqual({ flags: [], options: {}, positionals: [] });
  });

  it("flags, options in both forms and positionals, in any order", () => {
    expect(parsed(["core", "--json", "--exe", "/app/bin", "--timeout=30", "extra", "--fresh"])).toEqual({
      flags: ["fresh", "json"],
      options: { exe: "/app/bin", timeout: "30" },
      positionals: ["core", "extra"],
    });
  });

  it("keeps an option value verbatim: empty, with '=' or spaces, or starting with one dash", () => {
    expect(parsed(["--exe="]).options).toEqual({ exe: "" });
    expect(parsed(["--exe=a=b"]).options).toEqual({ exe: "a=b" });
    expect(parsed(["--exe", "/path with spaces/app"]).options).toEqual({ exe: "/path with spaces/app" });
    expect(parsed(["--timeout", "-1"]).options).toEqual({ timeout: "-1" });
    expect(parsed(["--exe=--json"]).options).toEqual({ exe: "--json" });
  });

  it("the last of a repeated option wins", () => {
    expect(parsed(["--exe", "a", "--exe=b"]).options).toEqual({ exe: "b" });
  });

  it("'-' is a positional (stdin)", () => {
    expect(parsed(["-"]).positionals).toEqual(["-"]);
  });

  it("everything after '--' is positional, even what looks like an option", () => {
    expect(parsed(["--json", "--", "--exe", "-h", "--unknown", "--"])).toEqual({
      flags: ["json"],
      options: {},
      positionals: ["--exe", "-h", "--unknown", "--"],
    });
  });

  it("--help and -h are always known", () => {
    expect(parsed(["--help"]).flags).toEqual(["help"]);
    expect(parsed(["-h"]).flags).toEqual(["help"]);
    expect(parsed(["x", "-h"], {}).flags).toEqual(["help"]);
  });

  it("an unknown option is a usage error naming it", () => {
    expect(usageError(["--jsn"])).toBe("unknown option --jsn");
    expect(usageError(["--verbose=1"])).toBe("unknown option --verbose");
    expect(usageError(["--json"], {})).toBe("unknown option --json");
  });

  it("an unknown short option is a usage error, not a file name", () => {
    // `analyze -v core` must not try to open a file called "-v".
    expect(usageError(["-v", "core"])).toBe("unknown option -v");
    expect(usageError(["-json"])).toBe("unknown option -json");
  });

  it("an option without its value is a usage error naming it", () => {
    expect(usageError(["--exe"])).toBe("--exe needs a value");
    expect(usageError(["core", "--timeout"])).toBe("--timeout needs a value");
  });

  it("an option followed by another option is missing its value", () => {
    // Otherwise `--exe --json core` takes "--json" as the executable and drops the flag.
    expect(usageError(["--exe", "--json", "core"])).toBe("--exe needs a value");
    expect(usageError(["--exe", "--"])).toBe("--exe needs a value");
  });

  it("a flag given a value is a usage error", () => {
    expect(usageError(["--json=yes"])).toBe("--json takes no value");
    expect(usageError(["--help=1"])).toBe("--help takes no value");
  });

  it("does not change argv", () => {
    const argv = ["core", "--exe", "a", "--json"];
    parseArgs(argv, SPEC);
    expect(argv).toEqual(["core", "--exe", "a", "--json"]);
  });
});

describe("EXIT", () => {
  it("has the documented, distinct codes", () => {
    expect(EXIT).toEqual({ ok: 0, failed: 1, usage: 2, config: 3, missingTool: 4, noInput: 5 });
  });
});
