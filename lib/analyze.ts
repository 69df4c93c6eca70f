/**
 * Analyzes one dump: check it, decompress it if needed, run gdb once, parse,
 * summarize, and return a result document (schema v1). The one gdb run also
 * carries the uncaught C++ exception probe (symbols/runtime.ts): exactly one
 * gdb process per core.
 *
 * Never throws for a bad input or a gdb problem: every such case is a failed
 * result with a stable code (file_not_found, empty_file, not_a_core,
 * truncated_core, executable_not_found, gdb_not_installed, gdb_timeout,
 * gdb_failed, internal_error for the unexpected). The one exception is an
 * abort through `signal` (shutdown, job cancelled): that rejects with the
 * signal's reason, because a cancelled analysis is not a result.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { DEFAULT_MAX_DUMP_BYTES } from "./config.js";
import { decompressFile } from "./core/decompress.js";
import { inspectCore, type CoreFileInfo } from "./core/elf.js";
import { CoreSightError, PermanentError, toError } from "./errors.js";
import { parseBacktrace } from "./gdb/parseBacktrace.js";
import { runGdb, type GdbRun, type GdbRunOptions } from "./gdb/run.js";
import { ERRORS_KEY } from "./gdb/sections.js";
import { parseSharedLibraries } from "./gdb/sharedLibraries.js";
import { findCrashThread, parseSelectedThread } from "./gdb/crash.js";
import { summarize } from "./gdb/summarize.js";
import { failedResult, SCHEMA_VERSION, type Result } from "./result.js";
import { confine } from "./storage/workDir.js";
import { checkModulePath } from "./symbols/inventory.js";
import { AT_ENTRY, readCoreNotes, type CoreNotes } from "./symbols/coreNotes.js";
import { GO_SECTION, goProbeSection, parseGoSection, withPanickingGoroutine } from "./symbols/go.js";
import { parseRuntimeSection, RUNTIME_SECTION, runtimeProbeSection } from "./symbols/runtime.js";

/** gdb settings pass straight through to runGdb (lib/gdb/run.ts documents them). */
export interface AnalyzeOptions
  extends Pick<
    GdbRunOptions,
    "solibSearchPath" | "debugFileDirectories" | "debuginfod" | "gdbPath" | "timeoutMs" | "maxOutputBytes" | "maxFrames"
  > {
  /** The dump: a raw ELF core, or gzip/zstd-compressed (detected by magic bytes). */
  core: string;
  /** The crashed executable; when absent, the path the core names is used if it exists (under `sysroot`). */
  exe?: string | null;
  /** Root that the core's absolute library paths are resolved under (gdb `set sysroot`). */
  sysroot?: string | null;
  /** Where a compressed dump is decompressed (removed afterwards); default: a temp dir. */
  workDir?: string;
  signal?: AbortSignal;
  onProgress?: () => void;
  /** Look for the executable the core names when `exe` is not given. Default true. */
  locateExecutable?: boolean;
  /** A compressed dump may decompress to at most this many bytes (MAX_DUMP_BYTES; default its default): `too_large` past it. */
  maxDumpBytes?: number;
  /** Receives the timings of this analysis (benchmarks, logs). */
  onTimings?: (t: AnalyzeTimings) => void;
}

export interface AnalyzeTimings {
  /** The whole analyzeCore call. */
  totalMs: number;
  /** Wall time of the gdb process. */
  gdbMs: number;
  decompressMs: number;
}

/** gdb's stderr kept in a result: enough for the warnings, bounded for the store. */
export const MAX_STDERR_IN_RESULT = 16 * 1024;

/**
 * Analyzes a dump with gdb. Resolves with a completed or a failed result;
 * rejects only when `opts.signal` aborts.
 */
export async function analyzeCore(opts: AnalyzeOptions): Promise<Result> {
  const started = performance.now();
  const timings: AnalyzeTimings = { totalMs: 0, gdbMs: 0, decompressMs: 0 };
  const cleanups: Array<() => Promise<void>> = [];
  try {
    return await analyze(opts, timings, cleanups);
  } catch (e: unknown) {
    if (opts.signal?.aborted) throw opts.signal.reason ?? e;
    const err = toError(e);
    const code = err instanceof CoreSightError ? err.code : "internal_error";
    const message = err instanceof CoreSightError ? err.message : `unexpected error while analyzing ${opts.core}: ${err.message}`;
    return failedResult(code, message);
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    timings.totalMs = Math.round(performance.now() - started);
    opts.onTimings?.(timings);
  }
}

async function analyze(opts: AnalyzeOptions, timings: AnalyzeTimings, cleanups: Array<() => Promise<void>>): Promise<Result> {
  const original = await inspectCore(opts.core);
  let core = path.resolve(opts.core);
  let info: CoreFileInfo = original;

  if (opts.exe) {
    const exe = path.resolve(opts.exe);
    const st = await fs.stat(exe).catch(() => null);
    if (!st) throw new PermanentError("executable_not_found", `executable not found: ${exe}`);
    if (!st.isFile()) throw new PermanentError("executable_not_found", `executable is not a regular file: ${exe}`);
  }

  if (original.compression) {
    const t = performance.now();
    const dir = await fs.mkdtemp(path.join(opts.workDir ?? os.tmpdir(), "coresight-core-"));
    cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
    core = path.join(dir, "core");
    await decompressTo(opts.core, core, original.compression, opts);
    timings.decompressMs = Math.round(performance.now() - t);
    info = await inspectCore(core);
  }

  const notes = await readCoreNotes(core).catch(() => null);
  let exe = opts.exe ? path.resolve(opts.exe) : null;
  if (!exe && opts.locateExecutable !== false && notes) exe = await locateExecutable(notes, opts.sysroot ?? null);

  let run: GdbRun;
  try {
    run = await runGdb({
      core,
      exe,
      sysroot: opts.sysroot ?? null,
      solibSearchPath: opts.solibSearchPath ?? [],
      debugFileDirectories: opts.debugFileDirectories ?? [],
      debuginfod: opts.debuginfod ?? null,
      ...(opts.gdbPath ? { gdbPath: opts.gdbPath } : {}),
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
      ...(opts.maxOutputBytes !== undefined ? { maxOutputBytes: opts.maxOutputBytes } : {}),
      ...(opts.maxFrames !== undefined ? { maxFrames: opts.maxFrames } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      ...(opts.workDir ? { tmpDir: opts.workDir } : {}),
      // In this run, not a second gdb: each probe is silent unless the crash
      // thread threw (C++) or a goroutine is panicking (Go).
      extraSections: [runtimeProbeSection(), goProbeSection()],
    });
  } catch (e: unknown) {
    if (opts.signal?.aborted) throw e;
    throw e instanceof CoreSightError ? e : new PermanentError("gdb_failed", `gdb could not run: ${toError(e).message}`, { cause: e });
  }
  timings.gdbMs = run.durationMs;
  return resultOf(run, original, info, notes, exe);
}

/** Builds the result from one gdb run. Pure apart from its inputs. */
export function resultOf(run: GdbRun, original: CoreFileInfo, info: CoreFileInfo, notes: CoreNotes | null, exe: string | null): Result {
  const s = run.sections;
  const go = parseGoSection(s[GO_SECTION]);
  let bt = parseBacktrace(`${s.banner ?? ""}\n${s.backtrace ?? ""}`);
  // A Go panic's frames are on the goroutine's stack, which gdb's backtrace of the signalled thread never reaches.
  const selected = parseSelectedThread(s.selected_thread);
  const hints = { selected: selected?.number ?? null, lwp: selected?.lwp ?? null };
  if (go) bt = withPanickingGoroutine(bt, findCrashThread(bt, hints), go);
  const summary = summarize(bt, { siginfoText: s.siginfo ?? null, selectedThread: hints.selected, lwpHint: hints.lwp, processPid: notes?.pid ?? null });
  const gdb = {
    version: run.version,
    exit_code: run.exitCode,
    duration_ms: run.durationMs,
    truncated: run.truncated,
    stderr: bounded(run.stderr, MAX_STDERR_IN_RESULT),
  };
  const executable = summary.executable ?? notes?.execfn ?? exe ?? notes?.fname ?? null;
  const core = {
    size: original.size,
    executable,
    command_line: summary.command_line ?? notes?.psargs ?? null,
    architecture: info.machine,
    compression: original.compression,
    truncated: info.truncated,
  };
  if (summary.threads.length === 0) {
    const why = gdbComplaint(run);
    if (info.truncated) {
      return failedResult("truncated_core", `core file is truncated (${info.size} of ${info.expectedSize} bytes) and gdb found no thread in it${why ? `: ${why}` : ""}`, { gdb, core });
    }
    const what = run.truncated ? "gdb's output was cut at the output limit before any thread" : "gdb found no thread in the core";
    return failedResult("gdb_failed", `${what}${why ? `: ${why}` : ""}`, { gdb, core });
  }
  return {
    schema_version: SCHEMA_VERSION,
    status: "completed",
    signal: summary.signal,
    crash_thread: summary.crash_thread,
    threads: summary.threads,
    crash_frame: summary.crash_frame,
    signature: summary.signature,
    quality: summary.quality,
    shared_libraries: parseSharedLibraries(s.sharedlibrary).map(({ from, to, symbols_read, path: p }) => ({ from, to, symbols_read, path: p })),
    abort_message: abortMessageOf(s.abort_message),
    ...runtimeOf(s[RUNTIME_SECTION], go?.panic_message ?? null),
    gdb,
    core,
  };
}

/** The abort_message section is one JSON line: {"abort_message": string|null}. */
export function abortMessageOf(text: string | undefined): string | null {
  if (!text) return null;
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const v = (JSON.parse(line) as { abort_message?: unknown }).abort_message;
      if (typeof v === "string" && v.trim() !== "") return v.replace(/\s+$/, "");
    } catch {
      // not our line
    }
  }
  return null;
}

/** `runtime` for the result: present only when a probe found the uncaught C++ exception's type or message, or a Go panic's message. */
function runtimeOf(text: string | undefined, panicMessage: string | null): Pick<Result, "runtime"> {
  const probe = parseRuntimeSection(text);
  if (!probe && panicMessage === null) return {};
  return { runtime: { ...(probe ?? {}), ...(panicMessage !== null ? { panic_message: panicMessage } : {}) } };
}

/** The most telling thing gdb said when it found nothing: its in-band errors, else stderr. */
function gdbComplaint(run: GdbRun): string {
  const errors = run.sections[ERRORS_KEY];
  const lines = (errors ?? run.stderr).split("\n").map((l) => l.trim()).filter(Boolean);
  return bounded(lines.slice(0, 3).join("; "), 500);
}

function bounded(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}\n[... ${s.length - max} more characters]`;
}

/**
 * The executable the core names: the file mapping that holds the entry
 * point (AT_ENTRY), else AT_EXECFN; used only if it exists here (under
 * `sysroot`, when one is given: never this machine's file then).
 */
export async function locateExecutable(notes: CoreNotes, sysroot: string | null): Promise<string | null> {
  const entry = notes.auxv.get(AT_ENTRY);
  const candidates: string[] = [];
  if (entry !== undefined) {
    const m = notes.mappings.find((x) => entry >= x.start && entry < x.end);
    if (m) candidates.push(m.path);
  }
  if (notes.execfn) candidates.push(notes.execfn);
  for (const raw of candidates) {
    // The core names it: data, not path syntax (no `..` out of the sysroot).
    const checked = checkModulePath(raw);
    if (!("path" in checked) || !path.isAbsolute(checked.path)) continue;
    const c = checked.path;
    const p = sysroot ? confine(sysroot, c) : c;
    const st = await fs.stat(p).catch(() => null);
    if (st?.isFile()) return p;
  }
  return null;
}

async function decompressTo(src: string, dest: string, kind: NonNullable<CoreFileInfo["compression"]>, opts: AnalyzeOptions): Promise<void> {
  try {
    await decompressFile(src, dest, kind, {
      maxBytes: opts.maxDumpBytes ?? DEFAULT_MAX_DUMP_BYTES,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (e: unknown) {
    if (opts.signal?.aborted) throw e;
    const err = toError(e);
    // Past the limit, a nested layer, an unknown kind: the dump itself is refused.
    if (err instanceof PermanentError && (err.code === "unsupported_compression" || err.code === "too_large")) throw err;
    // A cut compressed dump decompresses to a cut core: still worth a look.
    const written = (await fs.stat(dest).catch(() => null))?.size ?? 0;
    if (written > 0 && /unexpected end|premature end|truncated|incomplete/i.test(err.message)) return;
    throw new PermanentError("not_a_core", `could not decompress the ${kind} dump ${src}: ${err.message}`, { cause: e });
  }
}

