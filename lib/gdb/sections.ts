/**
 * Splits the output of the command file (commandFile.ts) back into its
 * sections. Only lines that are exactly a marker with this run's nonce count;
 * anything else, however marker-like, is content.
 */
import { errorMarker, sectionMarker } from "./commandFile.js";

/** Key under which splitSections gathers the in-band command errors, one per line: `<section>: <command>: <message>`. */
export const ERRORS_KEY = "_errors";

/**
 * @returns section name → text (trimmed of the blank lines the markers add),
 * plus ERRORS_KEY when a command failed. A section that never started (gdb
 * died, output truncated) is absent; text before the first marker (gdb's
 * own start-up noise) is under "_preamble" when non-empty.
 */
export function splitSections(stdout: string, nonce: string): Record<string, string> {
  const sectionPrefix = sectionMarker(nonce, "\u0000").split("\u0000")[0]!;
  const errorPrefix = errorMarker(nonce, "\u0000").split("\u0000")[0]!;
  const out: Record<string, string[]> = {};
  const errors: string[] = [];
  let current = "_preamble";
  out[current] = [];
  for (const line of stdout.split("\n")) {
    if (line.startsWith(sectionPrefix) && line.endsWith("@@")) {
      const name = line.slice(sectionPrefix.length, -2);
      if (/^[a-z_][a-z0-9_-]*$/.test(name)) {
        current = name;
        out[current] ??= [];
        continue;
      }
    }
    if (line.startsWith(errorPrefix)) {
      const end = line.indexOf("@@ ", errorPrefix.length);
      if (end !== -1) {
        errors.push(`${line.slice(errorPrefix.length, end)}: ${line.slice(end + 3)}`);
        continue;
      }
    }
    out[current]!.push(line);
  }
  const result: Record<string, string> = {};
  for (const [name, lines] of Object.entries(out)) {
    const text = trimBlankLines(lines).join("\n");
    if (name === "_preamble" && text === "") continue;
    result[name] = text;
  }
  if (errors.length > 0) result[ERRORS_KEY] = errors.join("\n");
  return result;
}

function trimBlankLines(lines: string[]): string[] {
  let a = 0;
  let b = lines.length;
  while (a < b && lines[a]!.trim() === "") a++;
  while (b > a && lines[b - 1]!.trim() === "") b--;
  return lines.slice(a, b);
}
