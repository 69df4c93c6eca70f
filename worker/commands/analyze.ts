/**
 * `coresight-worker analyze <core>`: analyze one dump on this machine with
 * exactly the analysis the worker runs for an event (lib/analyze.ts:
 * resolve the core's modules by build-id, then one gdb run), with the same
 * configuration (GDB_*, SYMBOL_*, DEBUGINFOD_URLS, SYSROOT, S3_*, WORK_DIR),
 * and print a human summary or the v1 result document.
 */
import type { S3Client } from "@aws-sdk/client-s3";
import { loadConfig } from "../../lib/config.js";
import { toError } from "../../lib/errors.js";
import type { Goroutine, Result } from "../../lib/result.js";
import { makeS3Client } from "../../lib/storage/s3.js";
import { createJobDir, removeJobDirSync } from "../../lib/storage/workDir.js";
import { openSymbolStore } from "../../lib/symbols/store.js";
import { analysisSettings, analyzeDump, type AnalyzeDumpOptions } from "../../lib/analyze.js";
import type { GroupingRules } from "../../lib/gdb/groupingRules.js";
import { HELP } from "./analyze.help.js";
import { EXIT, UsageError, parseArgs, type Command } from "../command.js";
import { oneLine, printable, renderSummary } from "./parse.js";

/** Streams the command writes to, and the environment it reads its defaults from; tests pass their own. */
export interface AnalyzeIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env?: Record<string, string | undefined>;
  /** An S3 client for an s3:// symbol store, instead of one built from the environment (tests). */
  s3?: S3Client | null;
}

/** The process's own streams and environment. */
export const processIo: AnalyzeIo = {
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
    case "invalid_input":
      return EXIT.noInput;
    default:
      return EXIT.failed;
  }
}

/** The options `analyze` takes besides --json (`signature explain` on a core takes them too). */
export const ANALYZE_OPTIONS = ["exe", "sysroot", "image", "timeout", "gdb", "max-frames", "symbol-store", "debuginfod"] as const;

/** Runs `analyze` with explicit I/O; returns the exit code. Usage errors throw UsageError. */
export async function analyzeCommand(argv: string[], io: AnalyzeIo = processIo): Promise<number> {
  const args = parseArgs(argv, { flags: ["json"], options: [...ANALYZE_OPTIONS] });
  if (args.flags.has("help")) {
    io.stdout(HELP);
    return EXIT.ok;
  }
  if (args.positionals.length !== 1) {
    throw new UsageError(args.positionals.length === 0 ? "missing <core>" : `expected one <core>, got ${args.positionals.length}`);
  }
  const core = args.positionals[0]!;
  const done = await analyzeWithOptions(core, args.options, io);
  if (typeof done === "number") return done;
  const { result, totalMs } = done;
  if (args.flags.has("json")) io.stdout(JSON.stringify(result, null, 2) + "\n");
  else if (result.status === "completed") io.stdout(printable(renderResult(result, core, totalMs)));
  if (result.status === "failed") {
    io.stderr(printable(`coresight-worker analyze: failed: ${result.error?.code ?? "unknown"}: ${result.error?.message ?? ""}`) + "\n");
  }
  return exitCodeOf(result);
}

/**
 * One analysis as `analyze` runs it: the configuration from `io.env`, the
 * command's options (ANALYZE_OPTIONS) over it, a job directory removed
 * afterwards. Returns the result, or an exit code when the symbol store
 * asked for cannot be opened. `groupingRules` replaces SIGNATURE_RULES.
 */
export async function analyzeWithOptions(
  core: string,
  options: ReadonlyMap<string, string>,
  io: AnalyzeIo,
  groupingRules?: GroupingRules,
): Promise<{ result: Result; totalMs: number } | number> {
  const config = loadConfig(io.env);
  let timeoutMs = config.gdb.timeoutMs;
  const timeout = options.get("timeout");
  if (timeout !== undefined) {
    const s = Number(timeout);
    if (!Number.isFinite(s) || s <= 0) throw new UsageError(`--timeout must be a positive number of seconds, got ${JSON.stringify(timeout)}`);
    timeoutMs = Math.max(1, Math.round(s * 1000));
  }
  let maxFrames = config.gdb.maxFrames;
  const maxFramesArg = options.get("max-frames");
  if (maxFramesArg !== undefined) {
    const n = Number(maxFramesArg);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--max-frames must be a positive integer, got ${JSON.stringify(maxFramesArg)}`);
    maxFrames = n;
  }

  const store = options.get("symbol-store") ?? config.symbols.store;
  const debuginfodUrls = options.get("debuginfod") ?? config.symbols.debuginfodUrls;
  const s3 = io.s3 !== undefined ? io.s3 : await makeS3Client(config.s3);
  if (store) {
    // The analysis would carry on without a store it cannot open (as the
    // worker does for an event); a store asked for here must be usable.
    try {
      openSymbolStore(store, s3);
    } catch (e: unknown) {
      io.stderr(`coresight-worker analyze: ${toError(e).message}\n`);
      return EXIT.config;
    }
  }
  const base = analysisSettings(config, s3);
  const opts: Omit<AnalyzeDumpOptions, "workDir"> = {
    ...base,
    core,
    exe: options.get("exe") ?? null,
    sysroot: options.get("sysroot") ?? base.sysroot ?? null,
    image: options.get("image") ?? null,
    gdbPath: options.get("gdb") ?? config.gdb.path,
    timeoutMs,
    maxFrames,
    symbols: { ...base.symbols!, store, debuginfodUrls },
    ...(groupingRules ? { groupingRules } : {}),
  };

  const started = performance.now();
  const workDir = await createJobDir(config.workDir, "analyze");
  let result: Result;
  try {
    result = await analyzeDump({ ...opts, workDir });
  } finally {
    // One-shot: nothing else is waiting on the event loop (removeJobDirSync).
    removeJobDirSync(workDir);
  }
  return { result, totalMs: Math.round(performance.now() - started) };
}

/** The human summary of a completed result: parse's summary plus what only a dump gives. */
export function renderResult(r: Result, corePath: string, totalMs?: number): string {
  const lines: string[] = [];
  const size = r.core?.size != null ? `, ${formatBytes(r.core.size)}` : "";
  const arch = r.core?.architecture ? `, ${r.core.architecture}` : "";
  lines.push(`core:         ${corePath}${size}${arch}`);
  if (r.core?.truncated) lines.push("              core file is truncated: frames may be missing");
  for (const w of r.warnings ?? []) lines.push(`warning:      ${w}`);
  if (r.core?.command_line) lines.push(`command line: ${oneLine(r.core.command_line)}`);
  const text = renderSummary({
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
  if (r.abort_message) lines.push(`abort:        ${indent(r.abort_message)}`);
  if (r.runtime?.exception_type || r.runtime?.exception_message) {
    const type = r.runtime.exception_type ?? "unknown type";
    const what = r.runtime.exception_message != null ? `: ${indent(r.runtime.exception_message)}` : "";
    lines.push(`exception:    uncaught ${type}${what}`);
  }
  if (r.runtime?.panic_message) lines.push(`panic:        ${indent(r.runtime.panic_message)}`);
  if (r.goroutines) lines.push(...goroutineLines(r.goroutines));
  const libs = r.shared_libraries;
  if (libs.length > 0) {
    const noSyms = libs.filter((l) => !l.symbols_read).length;
    lines.push(`libraries:    ${libs.length} loaded${noSyms > 0 ? `, ${noSyms} without symbols` : ""}`);
  }
  const sym = r.symbolication;
  if (sym) {
    lines.push(`symbols:      ${sym.found} found, ${sym.missing} missing, ${sym.mismatched} mismatched`);
    if (sym.missing_build_ids.length > 0) {
      lines.push("              build-ids to upload (coresight-worker symbols add):");
      for (const id of sym.missing_build_ids) {
        const m = r.modules?.find((x) => x.build_id === id);
        lines.push(`                ${id}${m ? `  ${m.path}` : ""}`);
      }
    }
    // Only the modules the crash thread runs through matter for names and lines.
    const crashModules = new Set((r.threads.find((t) => t.crashed)?.frames ?? []).map((f) => f.library).filter((l): l is string => l !== null));
    const bare = (sym.without_debug_info_build_ids ?? []).filter((id) => {
      const m = r.modules?.find((x) => x.build_id === id);
      return m && crashModules.has(m.path);
    });
    if (bare.length > 0) {
      lines.push("              in the crash thread without debug info (upload their debug files for lines):");
      for (const id of bare) lines.push(`                ${id}  ${r.modules?.find((x) => x.build_id === id)?.path ?? ""}`);
    }
  }
  if (r.gdb) {
    const total = totalMs ? ` of ${totalMs} ms total` : "";
    const cut = r.gdb.truncated ? " — output truncated at the limit" : "";
    lines.push(`gdb:          ${r.gdb.version ?? "unknown version"}, ${r.gdb.duration_ms} ms${total}${cut}`);
  }
  return lines.join("\n") + "\n";
}

/** Goroutines shown in the human summary at most (all are in --json). */
const SHOWN_GOROUTINES = 10;

/**
 * `goroutines:` with the count by status, then one line per goroutine: its
 * id (`*` marks the panicking one), status or wait reason, and its first
 * frame outside the runtime (where the program's own code is).
 */
function goroutineLines(gs: Goroutine[]): string[] {
  const counts = new Map<string, number>();
  for (const g of gs) counts.set(g.status, (counts.get(g.status) ?? 0) + 1);
  const out = [`goroutines:   ${gs.length} (${[...counts].map(([k, n]) => `${n} ${k}`).join(", ")})`];
  for (const g of gs.slice(0, SHOWN_GOROUTINES)) {
    const f = g.frames.find((fr) => fr.function !== null && !fr.function.startsWith("runtime.")) ?? g.frames[0];
    const at = f ? `  ${f.function ?? "??"}${f.file ? ` ${f.file}${f.line !== null ? `:${f.line}` : ""}` : ""}` : "";
    out.push(`            ${g.panicking ? "*" : " "} ${String(g.goid).padEnd(5)} ${(g.wait_reason ?? g.status).padEnd(18)}${at}`);
  }
  if (gs.length > SHOWN_GOROUTINES) out.push(`              ... ${gs.length - SHOWN_GOROUTINES} more (--json lists all)`);
  return out;
}

/** Continuation lines of a multi-line value line up under its first line. */
function indent(s: string): string {
  return s.split("\n").join("\n              ");
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

const command: Command = {
  name: "analyze",
  help: HELP,
  run: (argv) => analyzeCommand(argv),
};
export default command;
