/**
 * The crash thread's registers (`info registers`) and the instructions at
 * the faulting pc (`x/16i $pc`), from their own sections of the one gdb run,
 * for the result: what an engineer reads next to the crash frame. Bounded:
 * a register file is a few dozen lines, the disassembly 16.
 */
const MAX_REGISTERS = 128;
const MAX_INSTRUCTIONS = 32;

/** `rax  0x0  0` lines → { rax: "0x0" }; the raw hex value gdb printed (flags and segment registers included). */
export function parseRegisters(text: string | undefined | null): Record<string, string> | null {
  if (!text) return null;
  const out: Record<string, string> = {};
  let n = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-z][a-z0-9_.]{0,15})\s+(0x[0-9a-f]+|\[[^\]]{0,200}\]|-?\d+)\b/i.exec(line.trim());
    if (!m) continue;
    out[m[1]!] = m[2]!;
    if (++n >= MAX_REGISTERS) break;
  }
  return n > 0 ? out : null;
}

/** The disassembly lines (`=> 0x… <fn+24>:\tmov …` marks the faulting one); null when gdb printed none. */
export function parseDisassembly(text: string | undefined | null): string[] | null {
  if (!text) return null;
  const lines = text
    .split("\n")
    .map((l) => l.replace(/\s+$/, ""))
    .filter((l) => /^(=>)?\s+0x[0-9a-f]+/i.test(l))
    .slice(0, MAX_INSTRUCTIONS)
    .map((l) => l.slice(0, 300));
  return lines.length > 0 ? lines : null;
}
