/**
 * Parses gdb's `info sharedlibrary` table:
 *
 *   From                To                  Syms Read   Shared Object Library
 *   0x00007f3acbbd2380  0x00007f3acbd2622d  Yes         /lib/x86_64-linux-gnu/libc.so.6
 *   0x00007f...         0x00007f...         Yes (*)     /usr/lib/libfoo.so.1
 *                                           No          /lib/libgone.so.2
 *   (*): Shared library is missing debugging information.
 *
 * A row without addresses is a library the core names but gdb could not load.
 * "Yes (*)" means symbols were read from the library but it has no debug info.
 */
import type { SharedLibrary } from "../result.js";

export interface ParsedSharedLibrary extends SharedLibrary {
  /** "Yes (*)": the library's symbols were read, but it has no debugging information. */
  missing_debug_info: boolean;
}

const ADDR = "0x[0-9a-fA-F]+";
// A row without addresses is indented to the "Syms Read" column: "No shared libraries loaded" is not a row.
const ROW = new RegExp(`^(?:\\s*(${ADDR})\\s+(${ADDR})\\s+|\\s+)(Yes \\(\\*\\)|Yes|No)\\s+(\\S.*?)\\s*$`);

/** Never throws; lines that are not rows (header, footnote, warnings) are skipped. */
export function parseSharedLibraries(text: string | null | undefined): ParsedSharedLibrary[] {
  if (!text) return [];
  const out: ParsedSharedLibrary[] = [];
  for (const line of text.split("\n")) {
    if (line.length > 8192) continue;
    const m = ROW.exec(line);
    if (!m) continue;
    out.push({
      from: m[1]?.toLowerCase() ?? null,
      to: m[2]?.toLowerCase() ?? null,
      symbols_read: m[3] !== "No",
      path: m[4]!,
      missing_debug_info: m[3] === "Yes (*)",
    });
  }
  return out;
}
