/**
 * THE analysis path: the worker, the `analyze` command, the goldens and the
 * benchmarks all call `analyzeDump()`, so they cannot disagree.
 *
 *   open the dump once (check it; decompress it once, metered, keeping its
 *   original size and kind) → read the core's notes once → resolve every
 *   module by build-id into the job's tree (gdb's whole world: never this
 *   machine's /) → one gdb run (the C++ exception and Go probes are sections
 *   of it) → parse and summarize once, with the module map.
 *
 * With a deduplicator (`dedup`, DEDUP=on in the worker), the core's address
 * signature comes first (lib/dedup/: eu-stack and the notes, milliseconds):
 * when the fleet already has enough completed analyses of it, the result
 * references one (`deduplicated_from`) and neither symbols nor gdb are touched.
 *
 * Never throws for a bad input or a gdb problem: every such case is a failed
 * result with a stable code (file_not_found, empty_file, invalid_input,
 * not_a_core, truncated_core, too_large, unsupported_compression,
 * executable_not_found, gdb_not_installed, gdb_timeout, gdb_failed,
 * internal_error for the unexpected). The one exception is an abort through
 * `signal` (shutdown, job cancelled): that rejects with the signal's reason,
 * because a cancelled analysis is not a result.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { DEFAULT_MAX_DUMP_BYTES, DEFAULT_MAX_FRAMES, type Config } from "./config.js";
import { decompressFile } from "./core/decompress.js";
import type { Compression } from "./core/compression.js";
import { inspectCore, type CoreFileInfo } from "./core/inspect.js";
import { coreAddressSignature, type AddressSignature } from "./dedup/addressSignature.js";
import { deduplicatedResult, type JobDedup } from "./dedup/store.js";
import { CoreSightError, PermanentError, toError } from "./errors.js";
import { parseBacktrace, type Backtrace } from "./gdb/parseBacktrace.js";
import { indexCacheRun, type IndexCacheOptions } from "./gdb/indexCache.js";
import { runGdb, type GdbRun, type GdbRunOptions } from "./gdb/run.js";
import { ERRORS_KEY } from "./gdb/sections.js";
import { parseDisassembly, parseRegisters } from "./gdb/registers.js";
import { parseSharedLibraries } from "./gdb/sharedLibraries.js";
import { findCrashThread, parseSelectedThread } from "./gdb/crash.js";
import { summarize } from "./gdb/summarize.js";
import { failedResult, SCHEMA_VERSION } from "./failedResult.js";
import type { Result } from "./result.js";
import { isForeign } from "./symbols/arch.js";
import { readCoreNotes, type CoreNotes } from "./elf/coreNotes.js";
import { GO_SECTION, goProbeSection, goroutinesOf, parseGoSection, withPanickingGoroutine } from "./gdb/probes/go.js";
import { inventoryCore, moduleAt } from "./symbols/inventory.js";
import { withoutNoise } from "./gdb/stderr.js";
import { compileGroupingRules, type GroupingRules } from "./gdb/groupingRules.js";
import { prepareSymbols, type PreparedSymbols, type SymbolsOptions } from "./symbols/prepare.js";
import { crashModuleShare, symbolHints, symbolicationOf, toModules } from "./symbols/report.js";
import type { ImageFiles } from "./symbols/image.js";
import type { ResolvedModule } from "./symbols/resolve.js";
import { parseRuntimeSection, RUNTIME_SECTION, runtimeProbeSection } from "./gdb/probes/runtime.js";
import { assembleTree, type SymbolTree } from "./symbols/tree.js";
import { VERSION } from "./version.js";

export type { SymbolsOptions } from "./symbols/prepare.js";

/** gdb limits pass straight through to runGdb (lib/gdb/run.ts documents them). */
export interface AnalyzeDumpOptions extends Pick<GdbRunOptions, "gdbPath" | "timeoutMs" | "maxOutputBytes" | "maxFrames"> {
  /** The dump: a raw ELF core, or gzip/zstd-compressed (detected by magic bytes). */
  core: string;
  /** The crashed executable, trusted as given (the `exe` source of the ladder). */
  exe?: string | null;
  /** The crashed container's files (an extracted image); overrides symbols.sysroot. */
  sysroot?: string | null;
  /** The crashed container's image reference (the event's data.image): the `image` source pulls from it. */
  image?: string | null;
  /** Symbol sources (store, debuginfod, cache, ladder order); without them only exe, sysroot and this machine's files by build-id. */
  symbols?: SymbolsOptions;
  /** The job's directory: the decompressed core, the symbol tree and gdb's temp files go under it. Default: a temp dir, removed afterwards. */
  workDir?: string;
  /** gdb for cores of another architecture. */
  gdbMultiarchPath?: string;
  /**
   * The dump as it arrived, when a download already took a compression layer
   * off (the worker's streaming download): the result reports this size and
   * compression, as it does for a compressed file given directly.
   */
  arrived?: { size: number; compression: Compression | null };
  /** A compressed dump may decompress to at most this many bytes (MAX_DUMP_BYTES; default its default): `too_large` past it. */
  maxDumpBytes?: number;
  signal?: AbortSignal;
  onProgress?: () => void;
  /** Called once resolution is done (for logs and `symbols list`). */
  onSymbols?: (prepared: PreparedSymbols) => void;
  /** Receives the timings of this analysis (benchmarks, logs). */
  onTimings?: (t: AnalyzeTimings) => void;
  /** The operator's grouping rules (SIGNATURE_RULES, compiled); default: the built-in ones. */
  groupingRules?: GroupingRules;
  /** This job's crash-storm deduplicator (lib/dedup/store.ts); absent: always a full analysis. */
  dedup?: JobDedup;
  /** gdb's index cache, shared by the jobs (GDB_INDEX_CACHE*, lib/gdb/indexCache.ts); absent: gdb reads all DWARF itself. */
  gdbIndexCache?: IndexCacheOptions | null;
}

export interface AnalyzeTimings {
  /** The whole analyzeDump call. */
  totalMs: number;
  /** Wall time of the gdb process. */
  gdbMs: number;
  /** The gdb that ran had been started ahead (GDB_PRESTART); null when no gdb ran. */
  gdbPrestarted: boolean | null;
  decompressMs: number;
  /** Inventory, resolution and the tree. */
  symbolsMs: number;
}

/** gdb's stderr kept in a result: enough for the warnings, bounded for the store. */
export const MAX_STDERR_IN_RESULT = 16 * 1024;

/** What a job adds to the settings: the dump, its directory, its abort and progress. */
export type AnalysisSettings = Omit<AnalyzeDumpOptions, "core" | "workDir" | "exe" | "signal" | "onProgress" | "onSymbols" | "onTimings" | "dedup">;

/**
 * The analysis settings from the configuration, built in one place: the
 * worker passes them whole to every job, `analyze` overrides what its flags
 * set. (GDB_*, MAX_DUMP_BYTES, SYSROOT, SYMBOL_*, DEBUGINFOD_URLS.)
 */
export function analysisSettings(config: Config, s3: SymbolsOptions["s3"] = null): AnalysisSettings {
  return {
    gdbPath: config.gdb.path,
    gdbMultiarchPath: config.gdb.multiarchPath,
    timeoutMs: config.gdb.timeoutMs,
    maxOutputBytes: config.gdb.maxOutputBytes,
    maxFrames: config.gdb.maxFrames,
    // The download's limit holds for the analysis too: a layer left for analyze is metered the same.
    maxDumpBytes: config.maxDumpBytes,
    sysroot: config.symbols.sysroot ?? null,
    symbols: { ...config.symbols, s3 },
    groupingRules: compileGroupingRules(config.signatureRules),
    gdbIndexCache: config.gdb.indexCache,
  };
}

/** Analyzes a dump. Resolves with a completed or a failed result; rejects only when `opts.signal` aborts. */
export async function analyzeDump(opts: AnalyzeDumpOptions): Promise<Result> {
  const started = performance.now();
  const timings: AnalyzeTimings = { totalMs: 0, gdbMs: 0, gdbPrestarted: null, decompressMs: 0, symbolsMs: 0 };
  const cleanups: Array<() => Promise<void>> = [];
  try {
    // When and by which build: a result read months later says what produced it.
    return { ...(await analyze(opts, timings, cleanups)), analyzed_at: new Date().toISOString(), worker: { version: VERSION, host: os.hostname() } };
  } catch (e: unknown) {
    if (opts.signal?.aborted) throw opts.signal.reason ?? e;
    const err = toError(e);
    const code = err instanceof CoreSightError ? err.code : "internal_error";
    const message = err instanceof CoreSightError ? err.message : `unexpected error while analyzing ${opts.core}: ${err.message}`;
    return { ...failedResult(code, message), analyzed_at: new Date().toISOString(), worker: { version: VERSION, host: os.hostname() } };
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    timings.totalMs = Math.round(performance.now() - started);
    opts.onTimings?.(timings);
  }
}

/** The dump opened once: the raw core to read, what arrived, and what the raw core is. */
interface OpenedDump {
  core: string;
  original: CoreFileInfo;
  info: CoreFileInfo;
}

async function openDump(opts: AnalyzeDumpOptions, workDir: string, timings: AnalyzeTimings, cleanups: Array<() => Promise<void>>): Promise<OpenedDump> {
  // Missing, not a regular file (a FIFO would block every later open), not a core: typed, before anything else opens it.
  const inspected = await inspectCore(opts.core);
  const original = opts.arrived?.compression && !inspected.compression ? { ...inspected, size: opts.arrived.size, compression: opts.arrived.compression } : inspected;
  if (!inspected.compression) return { core: path.resolve(opts.core), original, info: inspected };
  const t = performance.now();
  const core = path.join(workDir, "core.decompressed");
  cleanups.push(() => fs.rm(core, { force: true }));
  // decompressFile refuses a layer under the layer (unsupported_compression).
  await decompressTo(opts.core, core, inspected.compression, opts);
  timings.decompressMs = Math.round(performance.now() - t);
  return { core, original, info: await inspectCore(core) };
}

async function analyze(opts: AnalyzeDumpOptions, timings: AnalyzeTimings, cleanups: Array<() => Promise<void>>): Promise<Result> {
  let workDir = opts.workDir;
  if (!workDir) {
    const tmp = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-analyze-"));
    cleanups.push(() => fs.rm(tmp, { recursive: true, force: true }));
    workDir = tmp;
  } else {
    await fs.mkdir(workDir, { recursive: true });
  }
  const dump = await openDump(opts, workDir, timings, cleanups);

  const explicitExe = opts.exe ? path.resolve(opts.exe) : null;
  if (explicitExe) {
    const st = await fs.stat(explicitExe).catch(() => null);
    if (!st) throw new PermanentError("executable_not_found", `executable not found: ${explicitExe}`);
    if (!st.isFile()) throw new PermanentError("executable_not_found", `executable is not a regular file: ${explicitExe}`);
  }

  const notes = await readCoreNotes(dump.core).catch(() => null);
  let address: AddressSignature | null = null;
  if (opts.dedup && notes) {
    address = await addressSignature(dump.core, notes, opts.signal);
    const prior = address ? await opts.dedup.lookup(address) : null;
    if (prior && address) {
      return deduplicatedResult(prior, address, {
        size: dump.original.size,
        executable: notes.execfn ?? explicitExe ?? notes.fname ?? null,
        command_line: notes.psargs,
        architecture: dump.info.machine ?? notes.machine,
        compression: dump.original.compression,
        truncated: dump.info.truncated,
      });
    }
  }
  const t = performance.now();
  let prepared: PreparedSymbols | null = null;
  let resolutionFailed: string | null = null;
  try {
    prepared = await prepareSymbols({
      core: dump.core,
      workDir,
      exe: explicitExe,
      sysroot: opts.sysroot ?? null,
      image: opts.image ?? null,
      ...(notes ? { notes } : {}),
      ...(opts.symbols ? { symbols: opts.symbols } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    opts.onSymbols?.(prepared);
  } catch (e: unknown) {
    if (opts.signal?.aborted) throw e;
    // Resolution could not run (eu-unstrip missing, an s3:// store without a client): analyze on an empty tree,
    // so gdb still takes nothing from this machine's /. Its own directory: a
    // tree half-built by prepareSymbols is never reused.
    resolutionFailed = toError(e).message;
  }
  const tree = prepared?.tree ?? (await assembleTree([], path.join(workDir, "symbols-none")));
  timings.symbolsMs = Math.round(performance.now() - t);
  const exe = prepared ? tree.exe : explicitExe;
  const foreign = prepared?.foreign ?? (dump.info.machine ? isForeign(dump.info.machine) : false);
  const urls = prepared?.debuginfodUrls ?? [];

  const index = await indexCacheRun(opts.gdbIndexCache, prepared?.modules ?? [], path.join(workDir, "gdb-index"));
  let run: GdbRun;
  try {
    run = await runGdb({
      core: dump.core,
      exe,
      sysroot: tree.sysroot,
      solibSearchPath: tree.solibSearchPath,
      debugFileDirectories: tree.debugFileDirectories,
      // The worker fetched from debuginfod already (into its persistent cache);
      // gdb's own client, per job, only on request (see SymbolsOptions.gdbDebuginfod).
      debuginfod: opts.symbols?.gdbDebuginfod && urls.length > 0 ? { urls: urls.join(" "), cacheDir: path.join(workDir, "debuginfod") } : null,
      gdbPath: foreign ? (opts.gdbMultiarchPath ?? "gdb-multiarch") : (opts.gdbPath ?? "gdb"),
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
      ...(opts.maxOutputBytes !== undefined ? { maxOutputBytes: opts.maxOutputBytes } : {}),
      ...(opts.maxFrames !== undefined ? { maxFrames: opts.maxFrames } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      // In this run, not a second gdb: each probe is silent unless the crash
      // thread threw (C++) or a goroutine is panicking (Go).
      extraSections: [runtimeProbeSection(), goProbeSection()],
      indexCacheDir: index?.dir ?? null,
    });
  } catch (e: unknown) {
    if (opts.signal?.aborted) throw e;
    throw e instanceof CoreSightError ? e : new PermanentError("gdb_failed", `gdb could not run: ${toError(e).message}`, { cause: e });
  }
  timings.gdbMs = run.durationMs;
  timings.gdbPrestarted = run.prestarted;
  await index?.finish();
  const result = resultOf(run, dump.original, dump.info, notes, exe, {
    tree,
    modules: prepared?.modules ?? null,
    architecture: prepared?.inventory.machine ?? null,
    maxFrames: opts.maxFrames ?? DEFAULT_MAX_FRAMES,
    ...(opts.groupingRules ? { groupingRules: opts.groupingRules } : {}),
  });
  if (address && opts.dedup) await opts.dedup.record(address, result);
  const withAddress = address ? { ...result, address_signature: address.key } : result;
  const withImage = prepared?.image && withAddress.status === "completed" ? imageReport(withAddress, prepared.image) : withAddress;
  // A core gdb could read: say why it has no symbols from outside the core.
  if (resolutionFailed !== null && withImage.status === "completed") {
    return { ...withImage, warnings: [...(withImage.warnings ?? []), `symbol resolution failed, analyzed without symbol files: ${resolutionFailed}`] };
  }
  return withImage;
}

/** The image source in the result: the digest the reference resolved to, or why the image could not be used (a warning). */
function imageReport(result: Result, image: ImageFiles): Result {
  const out: Result = {
    ...result,
    image: {
      reference: image.reference,
      digest: image.image?.digest ?? null,
      manifest_digest: image.image?.manifestDigest ?? null,
      platform: image.image?.platform ?? null,
    },
  };
  if (image.error !== null) out.warnings = [...(result.warnings ?? []), `image ${image.reference} not used for symbols: ${image.error}`];
  return out;
}

/** The core's address signature, or null when it cannot be had (then the analysis is a full one). */
async function addressSignature(core: string, notes: CoreNotes, signal: AbortSignal | undefined): Promise<AddressSignature | null> {
  try {
    const inventory = await inventoryCore(core, { notes, ...(signal ? { signal } : {}) });
    return await coreAddressSignature(core, notes, inventory.modules, signal ? { signal } : {});
  } catch (e: unknown) {
    if (signal?.aborted) throw e;
    return null;
  }
}

/** What the worker knows about the core's files, for resultOf. */
export interface SymbolContext {
  /** The job's tree gdb ran in: paths under its sysroot are reported as the crashed process had them. */
  tree: SymbolTree | null;
  /** The resolved modules (null when resolution could not run). */
  modules: ResolvedModule[] | null;
  architecture?: string | null;
  /** The frame limit the command file asked gdb for (plus one): a thread with more frames was cut. */
  maxFrames?: number;
  /** The operator's grouping rules (SIGNATURE_RULES): in-app and the signature follow them. */
  groupingRules?: GroupingRules;
}

/** `<tree sysroot>/lib/x86_64-linux-gnu/libc.so.6` → `/lib/x86_64-linux-gnu/libc.so.6`: never a path of the worker's job directory. */
function crashedPath(p: string | null, tree: SymbolTree | null): string | null {
  if (p === null || !tree) return p;
  const root = tree.sysroot.replace(/\/+$/, "");
  return p.startsWith(`${root}/`) ? p.slice(root.length) : p;
}

/**
 * Frames as the crashed process had them: libraries by the crashed
 * process's paths, every `??` frame with its module (module + offset is
 * then readable from `modules`, and the signature uses it), and every frame
 * of a library with its module, named or not.
 */
function withModules(bt: Backtrace, ctx: SymbolContext): Backtrace {
  const modules = ctx.modules ?? [];
  const max = ctx.maxFrames ?? Infinity;
  return {
    ...bt,
    threads: bt.threads.map((t) => ({
      ...t,
      ...(t.frames.length > max ? { frames_truncated: true } : {}),
      frames: t.frames.slice(0, max).map((f) => {
        const library = crashedPath(f.library, ctx.tree);
        if (library !== null || !f.address) return library === f.library ? f : { ...f, library };
        // gdb names no module for a library frame it has DWARF for (libc with libc6-dbg): the
        // module map does, so in-app and signatures do not depend on the worker's debug info.
        const m = moduleAt(modules, f.address);
        return m && (f.function === null || !m.executable) ? { ...f, library: m.path } : f;
      }),
    })),
  };
}

/** Builds the result from one gdb run: parse and summarize once, with the module map. Pure apart from its inputs. */
export function resultOf(
  run: GdbRun,
  original: CoreFileInfo,
  info: CoreFileInfo,
  notes: CoreNotes | null,
  exe: string | null,
  ctx: SymbolContext = { tree: null, modules: null },
): Result {
  const s = run.sections;
  const go = parseGoSection(s[GO_SECTION]);
  let bt = withModules(parseBacktrace(`${s.banner ?? ""}\n${s.backtrace ?? ""}`), ctx);
  // A Go panic's frames are on the goroutine's stack, which gdb's backtrace of the signalled thread never reaches.
  const selected = parseSelectedThread(s.selected_thread);
  const hints = { selected: selected?.number ?? null, lwp: selected?.lwp ?? null };
  if (go) bt = withPanickingGoroutine(bt, findCrashThread(bt, hints), go);
  const goroutines = go ? goroutinesOf(go) : [];
  const modules = ctx.modules;
  const summary = summarize(bt, {
    siginfoText: s.siginfo ?? null,
    selectedThread: hints.selected,
    lwpHint: hints.lwp,
    processPid: notes?.pid ?? null,
    ...(ctx.groupingRules ? { rules: ctx.groupingRules } : {}),
    ...(modules ? { moduleAt: (a: string) => moduleAt(modules, a), executable: modules.find((m) => m.executable)?.path ?? null } : {}),
  });
  const symbols = modules ? { modules: toModules(modules), symbolication: symbolicationOf(modules) } : {};
  const symbolWarnings = modules ? symbolHints(modules) : [];
  const gdb = {
    version: run.version,
    exit_code: run.exitCode,
    duration_ms: run.durationMs,
    truncated: run.truncated,
    stderr: bounded(withoutNoise(run.stderr).text, MAX_STDERR_IN_RESULT),
  };
  const executable = summary.executable ?? notes?.execfn ?? exe ?? notes?.fname ?? null;
  const core = {
    size: original.size,
    executable,
    // The core's own NT_PRPSINFO first: gdb's banner line is cut at the first newline of an argument.
    command_line: notes?.psargs ?? summary.command_line ?? null,
    architecture: info.machine ?? ctx.architecture ?? null,
    compression: original.compression,
    truncated: info.truncated,
  };
  if (summary.threads.length === 0) {
    const why = gdbComplaint(run);
    if (info.truncated) {
      return failedResult("truncated_core", `core file is truncated (${info.size} of ${info.expectedSize} bytes) and gdb found no thread in it${why ? `: ${why}` : ""}`, {
        gdb,
        core,
        ...symbols,
      });
    }
    const what = run.truncated ? "gdb's output was cut at the output limit before any thread" : "gdb found no thread in the core";
    return failedResult("gdb_failed", `${what}${why ? `: ${why}` : ""}`, { gdb, core, ...symbols });
  }
  // A frame named from the wrong file is not quality: scale by the found share of the crash thread's modules.
  const share = modules ? crashModuleShare(summary.threads, summary.crash_thread, modules) : 1;
  return {
    schema_version: SCHEMA_VERSION,
    status: "completed",
    signal: summary.signal,
    crash_thread: summary.crash_thread,
    threads: summary.threads,
    ...(goroutines.length > 0 ? { goroutines } : {}),
    crash_frame: summary.crash_frame,
    signature: summary.signature,
    quality: Math.round(summary.quality * share * 1000) / 1000,
    shared_libraries: parseSharedLibraries(s.sharedlibrary).map(({ from, to, symbols_read, path: p }) => ({ from, to, symbols_read, path: crashedPath(p, ctx.tree) ?? p })),
    abort_message: abortMessageOf(s.abort_message),
    ...optional("registers", parseRegisters(s.registers)),
    ...optional("disassembly", parseDisassembly(s.disassembly)),
    ...runtimeOf(s[RUNTIME_SECTION], go?.panic_message ?? null),
    gdb,
    core,
    ...symbols,
    ...(symbolWarnings.length > 0 ? { warnings: symbolWarnings } : {}),
  };
}

function optional<K extends string, V>(key: K, value: V | null): Partial<Record<K, V>> {
  return value === null ? {} : ({ [key]: value } as Record<K, V>);
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
  const lines = (errors ?? withoutNoise(run.stderr).text)
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  return bounded(lines.slice(0, 3).join("; "), 500);
}

function bounded(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}\n[... ${s.length - max} more characters]`;
}

async function decompressTo(src: string, dest: string, kind: NonNullable<CoreFileInfo["compression"]>, opts: AnalyzeDumpOptions): Promise<void> {
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
