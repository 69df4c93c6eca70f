/** execaGdb's work, loaded after the compile cache is on: one gdb through startGdb on a precomputed command file. */
import { readFile } from "node:fs/promises";
import { DEFAULT_GDB_MAX_OUTPUT_BYTES, startGdb } from "../../lib/gdb/launch.js";

/** Runs gdb on the command file in `file`; resolves with 0 when gdb exited 0, else 1. */
export async function runCommandFile(file: string): Promise<number> {
  const text = await readFile(file);
  const gdb = startGdb({ gdbPath: "gdb", debuginfod: null, maxOutputBytes: DEFAULT_GDB_MAX_OUTPUT_BYTES });
  gdb.subprocess.stdin.end(text);
  const r = await gdb.subprocess;
  return r.exitCode === 0 ? 0 : 1;
}
