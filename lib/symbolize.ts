/**
 * Analysis with symbol resolution: what the pipeline and `analyze` call.
 *
 *   inventory (core alone) → resolve each module by build-id → per-job tree
 *   → analyzeCore with that tree as gdb's whole world → modules, symbolication,
 *   quality scaled by what was found.
 *
 * gdb sees only files whose build-id matches the core (sysroot = the job's
 * tree, never this machine's /), so a frame is either named correctly or `??`
 * with its module, never plausibly and wrongly. When resolution itself cannot
 * run (eu-unstrip missing), the analysis still runs, on an empty tree: fewer
 * names, no wrong ones. One gdb process per core: the uncaught C++ exception
 * probe is a section of analyzeCore's run, not a second gdb.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { analyzeCore, type AnalyzeOptions } from "./analyze.js";
import { DEFAULT_MAX_DUMP_BYTES } from "./config.js";
import { decompressFile } from "./core/decompress.js";
import { inspectCore, type CoreFileInfo } from "./core/elf.js";
import { CoreSightError, PermanentError, toError } from "./errors.js";
import { failedResult, type Result } from "./result.js";
import { prepareSymbols, type PreparedSymbols, type SymbolsOptions } from "./symbols/prepare.js";
import { applySymbolReport } from "./symbols/report.js";
import { assembleTree } from "./symbols/tree.js";

export type { SymbolsOptions } from "./symbols/prepare.js";

export type AnalyzeWithSymbolsOptions = Omit<AnalyzeOptions, "sysroot" | "exe" | "workDir" | "gdbPath"> & {
  exe?: string | null;
  /** The crashed container's files (an extracted image); overrides symbols.sysroot. */
  sysroot?: string | null;
  symbols?: SymbolsOptions;
  /** The job's directory: the symbol tree and gdb's debuginfod cache go under it. */
  workDir: string;
  gdbPath?: string;
  gdbMultiarchPath?: string;
  /** Called once resolution is done (for logs and `symbols list`). */
  onSymbols?: (prepared: PreparedSymbols) => void;
};

/**
 * Analyzes a core after assembling its exact file set by build-id. Never
 * throws for a bad core or a missing symbol (returns a failed or a degraded
 * completed result); an abort still rejects like analyzeCore.
 */
export async function analyzeWithSymbols(opts: AnalyzeWithSymbolsOptions): Promise<Result> {
  // A core that is missing, not a regular file (a FIFO would block every
  // later open), not a core; an executable named explicitly that does not
  // exist: analyzeCore's checks (core first, then exe) word the failed
  // result, and nothing else opens the input; no gdb runs.
  const info = await inspectCore(opts.core).catch(() => null);
  if (!info || (opts.exe && !(await isFile(opts.exe)))) {
    const { symbols, gdbMultiarchPath, onSymbols, ...rest } = opts;
    return analyzeCore({ ...rest, exe: opts.exe ?? null, locateExecutable: false });
  }
  let raw: Awaited<ReturnType<typeof decompressed>>;
  try {
    raw = await decompressed(opts, info);
  } catch (e: unknown) {
    if (opts.signal?.aborted) throw e;
    // A bomb past MAX_DUMP_BYTES or a nested layer: the dump is refused, no second try.
    const err = toError(e);
    if (err instanceof CoreSightError) return failedResult(err.code, err.message);
    throw err;
  }
  try {
    if (!raw) return await analyzeRaw(opts);
    const result = await analyzeRaw({ ...opts, core: raw.file });
    // The result describes the dump as it arrived: its compressed size and kind.
    return result.core ? { ...result, core: { ...result.core, size: raw.size, compression: raw.compression } } : result;
  } finally {
    if (raw) await fs.rm(raw.file, { force: true });
  }
}

async function isFile(p: string): Promise<boolean> {
  return (await fs.stat(p).catch(() => null))?.isFile() ?? false;
}

/**
 * A compressed dump is decompressed once into the job directory, so the
 * inventory and gdb read the same raw core. Null when the dump is not
 * compressed, or when decompression fails: analyzeCore then reports the
 * problem in its own words (or analyzes what a cut stream gave).
 */
async function decompressed(opts: AnalyzeWithSymbolsOptions, info: CoreFileInfo): Promise<{ file: string; size: number; compression: string } | null> {
  if (!info.compression) return null;
  const dest = path.join(opts.workDir, "core.decompressed");
  try {
    await fs.mkdir(opts.workDir, { recursive: true });
    await decompressFile(opts.core, dest, info.compression, {
      maxBytes: opts.maxDumpBytes ?? DEFAULT_MAX_DUMP_BYTES,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return { file: dest, size: info.size, compression: info.compression };
  } catch (e: unknown) {
    await fs.rm(dest, { force: true });
    if (opts.signal?.aborted) throw e;
    if (e instanceof PermanentError && (e.code === "too_large" || e.code === "unsupported_compression")) throw e;
    return null;
  }
}

async function analyzeRaw(opts: AnalyzeWithSymbolsOptions): Promise<Result> {
  const { symbols, gdbMultiarchPath, onSymbols, exe, sysroot, workDir, gdbPath, ...rest } = opts;
  let prepared: PreparedSymbols | null = null;
  try {
    prepared = await prepareSymbols({
      core: opts.core,
      workDir,
      exe: exe ?? null,
      sysroot: sysroot ?? null,
      ...(symbols ? { symbols } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    onSymbols?.(prepared);
  } catch (e: unknown) {
    if (opts.signal?.aborted) throw e;
    // Not a core (analyzeCore owns the failed result's wording and code), or
    // resolution could not run (eu-unstrip missing): analyze on an empty
    // tree, so gdb still takes nothing from this machine's /.
    // Its own directory: a tree half-built by prepareSymbols is never reused.
    const tree = await assembleTree([], path.join(workDir, "symbols-none"));
    const bare = await analyzeCore({
      ...rest,
      workDir,
      ...(exe ? { exe } : {}),
      ...(gdbPath ? { gdbPath } : {}),
      sysroot: tree.sysroot,
      debugFileDirectories: tree.debugFileDirectories,
    });
    // A core gdb could read: say why it has no symbols from outside the core.
    if (bare.status !== "completed") return bare;
    const why = e instanceof Error ? e.message : String(e);
    return { ...bare, warnings: [...(bare.warnings ?? []), `symbol resolution failed, analyzed without symbol files: ${why}`] };
  }

  const urls = prepared.debuginfodUrls;
  const gdb = prepared.foreign ? (gdbMultiarchPath ?? "gdb-multiarch") : (gdbPath ?? "gdb");
  const result = await analyzeCore({
    ...rest,
    workDir,
    ...(prepared.tree.exe ? { exe: prepared.tree.exe } : {}),
    sysroot: prepared.tree.sysroot,
    solibSearchPath: prepared.tree.solibSearchPath,
    debugFileDirectories: prepared.tree.debugFileDirectories,
    // The worker fetched from debuginfod already (into its persistent cache);
    // gdb's own client, per job, only on request (see SymbolsOptions.gdbDebuginfod).
    debuginfod: symbols?.gdbDebuginfod && urls.length > 0 ? { urls: urls.join(" "), cacheDir: path.join(workDir, "debuginfod") } : null,
    gdbPath: gdb,
  });
  return applySymbolReport(result, prepared.modules, { architecture: prepared.inventory.machine });
}
