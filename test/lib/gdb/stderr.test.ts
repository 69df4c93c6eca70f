/**
 * gdb's stderr noise (lib/gdb/stderr.ts): the rule table, line by line, and
 * on a real core whose process had its locale's files mapped.
 */
import { describe, expect, it } from "@jest/globals";
import { analyzeDump } from "../../../lib/analyze.js";
import { noiseRuleOf, withoutNoise } from "../../../lib/gdb/stderr.js";
import { requireFixture } from "../../helpers/fixtures.js";

describe("noiseRuleOf", () => {
  const cases: Array<[string, string | null]> = [
    ["warning: Can't open file /usr/lib/locale/C.utf8/LC_CTYPE during file-backed mapping note processing", "locale-file"],
    ["warning: Can't open file /usr/lib/locale/locale-archive during file-backed mapping note processing", "locale-file"],
    ["warning: Can't open file /usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache during file-backed mapping note processing", "locale-file"],
    ["warning: setlocale: LC_ALL: cannot change locale (en_US.UTF-8)", "setlocale"],
    ["perl: warning: Setting locale failed.", "setlocale"],
    ["71\t../sysdeps/unix/sysv/linux/clock_nanosleep.c: No such file or directory.", "no-source"],
    ["warning: Section `.reg-xstate/2716' in core file too small.", "xstate"],
    ["warning: Unexpected size of section `.reg-xstate/7200' in core file.", "xstate"],
    ["warning: Error disabling address space randomization: Operation not permitted", "aslr"],
    // Kept: what says something about the crash or the symbols.
    ["warning: Can't open file /app/lib/libplugin.so during file-backed mapping note processing", null],
    ["warning: core file may not match specified executable file.", null],
    ["warning: Could not load shared library symbols for 2 libraries, e.g. /lib/libfoo.so.", null],
    ["Cannot access memory at address 0x7ffd0000", null],
    ["Python Exception <class 'gdb.error'>: No symbol \"allgs\" in current context.", null],
  ];
  it.each(cases)("%s → %s", (line, rule) => {
    expect(noiseRuleOf(line)).toBe(rule);
  });
});

describe("withoutNoise", () => {
  it("drops noise and blank lines, keeps the rest in order, counts what it dropped", () => {
    const text = [
      "warning: Section `.reg-xstate/9' in core file too small.",
      "",
      "warning: core file may not match specified executable file.",
      "44\t./nptl/pthread_kill.c: No such file or directory.",
      "",
    ].join("\n");
    expect(withoutNoise(text)).toEqual({ text: "warning: core file may not match specified executable file.\n", dropped: 2 });
    expect(withoutNoise("")).toEqual({ text: "", dropped: 0 });
  });
});

describe("on a real core", () => {
  it("a process that had its locale's files mapped (external-kill, LANG=C.UTF-8): no locale line in the result", async () => {
    const f = requireFixture("external-kill");
    const r = await analyzeDump({ core: f.core, exe: f.exe });
    expect(r.status).toBe("completed");
    expect(r.gdb?.stderr ?? "").not.toMatch(/locale|gconv|No such file or directory|reg-xstate/);
    expect(JSON.stringify(r.warnings ?? [])).not.toMatch(/locale/);
  });
});
