/** The I/O a CLI command test hands in: captured stdout/stderr and an environment with its own WORK_DIR. */
import type { AnalyzeIo } from "../../worker/commands/analyze.js";

export type CapturedIo = AnalyzeIo & { out: string; err: string };

/** WORK_DIR (job directories, symbol cache) is `workDir` unless `env` sets it. */
export function captureIo(workDir: string, env: Record<string, string | undefined> = {}): CapturedIo {
  const io = {
    out: "",
    err: "",
    env: { WORK_DIR: workDir, ...env },
    stdout: (s: string) => void (io.out += s),
    stderr: (s: string) => void (io.err += s),
  };
  return io;
}
