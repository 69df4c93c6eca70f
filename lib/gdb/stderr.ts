/**
 * gdb's stderr, without what the job's own setup makes it say.
 *
 * The worker runs gdb on a tree holding only the core's modules (see
 * lib/symbols/tree.ts), under LC_ALL=C (lib/gdb/run.ts). Some of what gdb
 * then prints is about that setup, not the crash, and a result that shows it
 * reads as if something went wrong: every locale file the crashed process
 * had mapped ("Can't open file /usr/lib/locale/C.utf8/LC_CTYPE during
 * file-backed mapping note processing"), the locale itself (setlocale
 * warnings when a locale is missing from the machine), a source line gdb
 * cannot show (the worker has no sources), the kernel's short xstate note,
 * and a live-process-only warning (address space randomization). Those lines
 * are dropped; everything else is kept as gdb wrote it.
 *
 * The rules are a table (GDB_STDERR_NOISE) decided by one pure function,
 * noiseRuleOf(), with a table test (test/lib/gdb/stderr.test.ts).
 */

/** One kind of noise: a name for it and the line shape. */
export interface NoiseRule {
  name: string;
  pattern: RegExp;
}

/** What gdb prints about the job's setup rather than the crash (see module doc). */
export const GDB_STDERR_NOISE: readonly NoiseRule[] = [
  // The crashed process had its locale's files (and glibc's gconv cache) mapped; the job's tree has none of them.
  { name: "locale-file", pattern: /^warning: Can't open file \S*\/(locale\/|locale-archive|gconv\/)\S* during file-backed mapping note processing$/ },
  // A locale that is not installed where gdb (or its Python) starts.
  {
    name: "setlocale",
    pattern:
      /(^|\b)(setlocale|Setting locale failed|Falling back to (the standard|a fallback) locale|LC_ALL = |LANG = |locale: Cannot set|Please check that your locale settings)/i,
  },
  // A source line gdb wanted to show next to frame #0: the worker has no sources by design.
  { name: "no-source", pattern: /^\d+\t.*: No such file or directory\.$/ },
  // The kernel's xstate note is not the size gdb 13 expects: shorter, or longer with state components it
  // does not know (AMX tiles on Intel Sapphire Rapids, the machine this rule was added on). The general
  // registers, the unwinding and the backtrace come from the .reg note and are unaffected.
  { name: "xstate", pattern: /^warning: (Section `\.reg-xstate\/\d+' in core file too small|Unexpected size of section `\.reg-xstate\/\d+' in core file)\.$/ },
  // Only about starting a live process, which the worker never does.
  { name: "aslr", pattern: /^warning: Error disabling address space randomization: / },
];

/** The name of the noise rule `line` matches, or null when the line is worth keeping. */
export function noiseRuleOf(line: string, rules: readonly NoiseRule[] = GDB_STDERR_NOISE): string | null {
  for (const r of rules) if (r.pattern.test(line)) return r.name;
  return null;
}

/** gdb's stderr without its noise lines (blank lines dropped too); `dropped` counts them. */
export function withoutNoise(stderr: string): { text: string; dropped: number } {
  const kept: string[] = [];
  let dropped = 0;
  for (const line of stderr.split("\n")) {
    if (line.trim() === "") continue;
    if (noiseRuleOf(line) !== null) dropped++;
    else kept.push(line);
  }
  return { text: kept.length > 0 ? `${kept.join("\n")}\n` : "", dropped };
}
