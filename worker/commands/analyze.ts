/**
 * `coresight-worker analyze <core>`: analyze one dump on this machine with
 * gdb, the same analysis the worker runs for an event (lib/analyze.ts), and
 * print a human summary or the v1 result document.
 */
import os from "node:os";
import { analyzeCore, type AnalyzeOptions } from "../../lib/analyze.js";
import { loadConfig } from "../../lib/config.js";
import type { Result } from "../../lib/result.js";
import { EXIT, UsageError, parseArgs, type Command } from "../command.js";
import { renderSummary } from "./parse.js";

const HELP = `Usage: coresight-worker analyze <core> [--exe PATH] [--sysroot DIR] [--json]
                                [--timeout SECONDS] [--gdb PATH] [--max-frames N]

Runs gdb once (batch mode, no init files, no auto-loaded scripts, no network)
on a core dump and prints what crashed: the signal and what it means, the
crash thread, the crash frame (the first frame in the program's own code,
below abort/assert/C++ terminate/Rust panic machinery), the top frames, the
abort or assert message, the signature (text + hash, to group the same crash)
and the symbol quality. gzip- and zstd-compressed dumps are decompressed
first (detected by content, not by name).

Options:
  --exe PATH          the executable that crashed (default: the path the core
                      names, when that file exists here, under --sysroot if given)
  --sysroot DIR       resolve the core's library paths under DIR (an extracted
                      container image), like gdb's "set sysroot"
  --json              print the result document (schema v1; see
                      \`coresight-worker schema\`), also for a failed analysis
  --timeout SECONDS   kill gdb after this long (default: GDB_TIMEOUT_MS, 300 s)
  --gdb PATH          gdb binary (default: GDB_PATH, "gdb")
  --max-frames N      frames per thread (default: GDB_MAX_FRAMES, 256)
  -h, --help          show this help

Examples:
  coresight-worker analyze core.1234
  coresight-worker analyze core.myapp.1234.node1.1700000000 --exe ./build/myapp
  coresight-worker analyze dump.zst --sysroot /srv/images/myapp-1.4 --json | jq .signature
  coresight-worker analyze core --gdb gdb-multiarch --timeout 60

Exit codes:
  0  analysis completed
  1  analysis failed (not a core, truncated core, gdb error or timeout);
     the error code and message are printed (with --json, the failed result)
  2  usage error (unknown option, no core given)
  3  configuration error (a GDB_* environment variable has a bad value)
  4  gdb is not installed (or --gdb does not exist)
  5  the core file (or --exe) is missing or unreadable
`;

/** Streams the command writes to, and the environment it reads its defaults from; tests pass their own. */
export interface AnalyzeIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env?: Record<string, string | undefined>;
}

const processIo: AnalyzeIo = {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
};

/** Exit code of a result (see HELP). */
export function exitCodeOf(r: Result): number {
  if (r.status === "completed") return EXIT.ok;
  switch (r.error?.code) {
    case "gdb_not_installed":
      return EXIT.missingTool;
    case "file_not_found":
    case "executable_not_found":
      return EXIT.noInput;
    default:
      return EXIT.failed;
  }
}

/** Runs `analyze` with explicit I/O; returns the exit code. Usage errors throw UsageError. */
export async function analyzeCommand(argv: string[], io: AnalyzeIo = processIo): Promise<number> {
  const args = parseArgs(argv, { flags: ["json"], options: ["exe", "sysroot", "timeout", "gdb", "max-frames"] });
  if (args.flags.has("help")) {
    io.stdout(HELP);
    return EXIT.ok;
  }
  if (args.positionals.length !== 1) {
    throw new UsageError(args.positionals.length === 0 ? "missing <core>" : `expected one <core>, got ${args.positionals.length}`);
  }
  const config = loadConfig(io.env);
  const opts: AnalyzeOptions = {
    core: args.positionals[0]!,
    exe: args.options.get("exe") ?? null,
    sysroot: args.options.get("sysroot") ?? null,
    gdbPath: args.options.get("gdb") ?? config.gdb.path,
    timeoutMs: config.gdb.timeoutMs,
    maxOutputBytes: config.gdb.maxOutputBytes,
    maxFrames: config.gdb.maxFrames,
    workDir: os.tmpdir(),
  };
  const timeout = args.options.get("timeout");
  if (timeout !== undefined) {
    const s = Number(timeout);
    if (!Number.isFinite(s) || s <= 0) throw new UsageError(`--timeout must be a positive number of seconds, got ${JSON.stringify(timeout)}`);
    opts.timeoutMs = Math.max(1, Math.round(s * 1000));
  }
  const maxFrames = args.options.get("max-frames");
  if (maxFrames !== undefined) {
    const n = Number(maxFrames);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--max-frames must be a positive integer, got ${JSON.stringify(maxFrames)}`);
    opts.maxFrames = n;
  }

  let totalMs = 0;
  const result = await analyzeCore({ ...opts, onTimings: (t) => (totalMs = t.totalMs) });
  if (args.flags.has("json")) io.stdout(JSON.stringify(result, null, 2) + "\n");
  else if (result.status === "completed") io.stdout(renderResult(result, opts.core, totalMs));
  if (result.status === "failed") {
    io.stderr(`coresight-worker analyze: failed: ${result.error?.code ?? "unknown"}: ${result.error?.message ?? ""}\n`);
  }
  return exitCodeOf(result);
}

/** The human summary of a completed result: parse's summary plus what only a dump gives. */
export function renderResult(r: Result, corePath: string, totalMs?: number): string {
  const lines: string[] = [];
  const size = r.core?.size != null ? `, ${formatBytes(r.core.size)}` : "";
  const arch = r.core?.architecture ? `, ${r.core.architecture}` : "";
  lines.push(`core:         ${corePath}${size}${arch}`);
  if (r.core?.command_line) lines.push(`command line: ${r.core.command_line}`);
  let text = renderSummary({
    signal: r.signal,
    crash_thread: r.crash_thread,
    threads: r.threads,
    crash_frame: r.crash_frame,
    signature: r.signature,
    quality: r.quality,
    executable: r.core?.executable ?? null,
    command_line: r.core?.command_line ?? null,
  });
  lines.push(text.trimEnd());
  if (r.abort_message) lines.push(`abort:        ${r.abort_message.split("\n").join("\n              ")}`);
  const libs = r.shared_libraries;
  if (libs.length > 0) {
    const noSyms = libs.filter((l) => !l.symbols_read).length;
    lines.push(`libraries:    ${libs.length} loaded${noSyms > 0 ? `, ${noSyms} without symbols` : ""}`);
  }
  if (r.gdb) {
    const total = totalMs ? ` of ${totalMs} ms total` : "";
    const cut = r.gdb.truncated ? " — output truncated at the limit" : "";
    lines.push(`gdb:          ${r.gdb.version ?? "unknown version"}, ${r.gdb.duration_ms} ms${total}${cut}`);
  }
  text = lines.join("\n") + "\n";
  return text;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

const command: Command = {
  name: "analyze",
  summary: "Analyze a core dump with gdb: signal, crash thread and frame, signature",
  help: HELP,
  run: (argv) => analyzeCommand(argv),
};
export default command;
