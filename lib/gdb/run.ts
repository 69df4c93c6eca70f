/**
 * Runs gdb on one core: exactly one gdb process, batch mode, one generated
 * command file (commandFile.ts) written to its stdin, output split into
 * sections (sections.ts). The process is started by launch.ts, possibly
 * before the job was known (a prestarted gdb).
 *
 * Safe by default: no init files (`-nx -nh`), no auto-loaded scripts
 * (`set auto-load off`: a core's binary can carry `.debug_gdb_scripts` or an
 * `<objfile>-gdb.py` that would otherwise run as Python on the worker), no
 * network (`set debuginfod enabled off` unless debuginfod URLs are given).
 * Both are `-iex`, in effect before gdb opens any file; gdb is given no file
 * on its command line, and opens the core and the executable only when the
 * command file says so, after its settings.
 *
 * Bounded: a timeout, an AbortSignal and an output cap each end the run; gdb
 * runs in its own process group (`detached`) and the whole group is killed,
 * so nothing it started can outlive it. The timeout counts from the moment
 * gdb is given its command file, not from its start.
 *
 * Dies with its worker: being in its own group, gdb is not reached when the
 * worker's group is killed (SIGKILL, OOM kill), so it is started through
 * `setpriv --pdeathsig KILL` (util-linux) when that exists: the kernel kills
 * gdb when the worker dies (PR_SET_PDEATHSIG, out of node's reach; it
 * survives setpriv's exec). And `killAllGdb()` ends every live gdb group at
 * once, for a worker that exits without waiting (a second SIGTERM).
 */
import { DEFAULT_MAX_FRAMES } from "../config.js";
import type { Result } from "execa";
import { GdbTimeoutError, PermanentError, toError } from "../errors.js";
import { buildCommandFile, newNonce, type CommandFileOptions } from "./commandFile.js";
import { DEFAULT_GDB_MAX_OUTPUT_BYTES, killGroup, takeGdb } from "./launch.js";
import { splitSections } from "./sections.js";

/** One gdb run; the core and where its files are pass straight through to the command file (CommandFileOptions). */
export interface GdbRunOptions extends Pick<CommandFileOptions, "core" | "exe" | "sysroot" | "solibSearchPath" | "debugFileDirectories"> {
  /** Lets gdb fetch from these servers (space-separated URLs) into cacheDir; off when absent. */
  debuginfod?: { urls: string; cacheDir: string } | null;
  /** Default "gdb". */
  gdbPath?: string;
  /** Default 300000 (5 minutes). */
  timeoutMs?: number;
  /** Cap on gdb's stdout (and, separately, stderr); reaching it kills gdb and sets `truncated`. Default 64 MiB. */
  maxOutputBytes?: number;
  /** Frames per thread. Default 256. */
  maxFrames?: number;
  signal?: AbortSignal;
  /** Called every `progressIntervalMs` while gdb runs, so the caller can heartbeat. */
  onProgress?: () => void;
  /** Default 2000. */
  progressIntervalMs?: number;
  /** Called with gdb's pid (= its process group id) once it has its command file. */
  onSpawn?: (pid: number) => void;
  /** Extra sections (name + CLI commands) appended to the command file: diagnostics and tests. */
  extraSections?: Array<{ name: string; commands: string[] }>;
  /** gdb's index cache directory for this run (lib/gdb/indexCache.ts builds it); off when absent. */
  indexCacheDir?: string | null;
}

export interface GdbRun {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  durationMs: number;
  truncated: boolean;
  timedOut: boolean;
  /** First line of `show version`, e.g. "GNU gdb (Debian 13.1-3) 13.1". */
  version: string | null;
  sections: Record<string, string>;
  /** The command file's text, so a run can be reproduced by hand. */
  commandFile: string;
  /** This run's gdb was started ahead (lib/gdb/launch.ts), not when the run asked for it. */
  prestarted: boolean;
}

export const DEFAULT_TIMEOUT_MS = 300_000;
export const DEFAULT_MAX_OUTPUT_BYTES = DEFAULT_GDB_MAX_OUTPUT_BYTES;
export { DEFAULT_MAX_FRAMES };

export { killAllGdb, prestartGdb, stopPrestartedGdb } from "./launch.js";

/**
 * Runs gdb once on `opts.core`. Resolves with whatever gdb printed, even
 * when gdb reported errors or the output was cut at the cap (`truncated`).
 *
 * @throws PermanentError("gdb_not_installed") when `gdbPath` does not exist.
 * @throws GdbTimeoutError when the timeout expires (the process group is killed).
 * @throws the signal's reason when `opts.signal` aborts the run.
 */
export async function runGdb(opts: GdbRunOptions): Promise<GdbRun> {
  const gdbPath = opts.gdbPath ?? "gdb";
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxOutputBytes = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const nonce = newNonce();
  const commandFile = buildCommandFile({
    core: opts.core,
    exe: opts.exe ?? null,
    sysroot: opts.sysroot ?? null,
    solibSearchPath: opts.solibSearchPath ?? [],
    debugFileDirectories: opts.debugFileDirectories ?? [],
    maxFrames: opts.maxFrames ?? DEFAULT_MAX_FRAMES,
    nonce,
    indexCacheDir: opts.indexCacheDir ?? null,
    ...(opts.extraSections ? { extraSections: opts.extraSections } : {}),
  });
  opts.signal?.throwIfAborted();

  let progress: NodeJS.Timeout | undefined;
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  // A prestarted gdb (launch.ts) when one matches, else a new one.
  const { subprocess, pid, prestarted } = takeGdb({ gdbPath, debuginfod: opts.debuginfod ?? null, maxOutputBytes });
  const onAbort = () => killGroup(pid);
  try {
    // The job's own timer and abort listener kill the whole group at once
    // (execa's timeout and cancelSignal would reach gdb only, and a
    // prestarted gdb was started before its job had either).
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    const started = performance.now();
    subprocess.stdin.end(commandFile);
    if (pid !== undefined) opts.onSpawn?.(pid);
    timer = setTimeout(() => {
      timedOut = true;
      killGroup(pid);
    }, timeoutMs);
    if (opts.onProgress) progress = setInterval(opts.onProgress, opts.progressIntervalMs ?? 2000);
    const r = await subprocess;
    const durationMs = Math.round(performance.now() - started);
    if (timedOut || r.isMaxBuffer || opts.signal?.aborted) {
      // execa settles as soon as it has sent the kill, not when gdb is gone:
      // kill the group and wait for gdb's exit so that nothing outlives us.
      killGroup(pid);
      await exited(subprocess, 5000);
    }
    return runOf(r, {
      gdbPath,
      core: opts.core,
      timeoutMs,
      started: pid !== undefined,
      timedOut,
      durationMs,
      nonce,
      commandFile,
      prestarted,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } finally {
    clearTimeout(timer);
    clearInterval(progress);
    opts.signal?.removeEventListener("abort", onAbort);
  }
}

/**
 * What a finished execa run means: the GdbRun, or the error that says why
 * there is none (not installed, could not start, timed out, aborted).
 */
function runOf(
  r: Result,
  ctx: {
    gdbPath: string;
    core: string;
    timeoutMs: number;
    started: boolean;
    timedOut: boolean;
    durationMs: number;
    nonce: string;
    commandFile: string;
    prestarted: boolean;
    signal?: AbortSignal;
  },
): GdbRun {
  if (r.failed && r.code === "ENOENT" && !ctx.started) {
    throw new PermanentError("gdb_not_installed", `gdb not found: ${ctx.gdbPath} (install gdb or pass its path)`, { cause: r });
  }
  if (r.failed && !ctx.started) throw new PermanentError("gdb_failed", `could not start ${ctx.gdbPath}: ${r.shortMessage}`, { cause: r });
  if (ctx.timedOut) throw new GdbTimeoutError(`gdb did not finish within ${ctx.timeoutMs} ms on ${ctx.core}`, { cause: r });
  if (ctx.signal?.aborted) throw toError(ctx.signal?.reason ?? new Error("gdb run aborted"));
  const stdout = typeof r.stdout === "string" ? r.stdout : "";
  const stderr = typeof r.stderr === "string" ? r.stderr : "";
  const sections = splitSections(stdout, ctx.nonce);
  return {
    stdout,
    stderr,
    exitCode: r.exitCode ?? null,
    durationMs: ctx.durationMs,
    truncated: r.isMaxBuffer,
    timedOut: false,
    version: versionOf(sections.version),
    sections,
    commandFile: ctx.commandFile,
    prestarted: ctx.prestarted,
  };
}

/** Resolves once the child has exited (and been reaped), or after `ms`. */
async function exited(child: { exitCode: number | null; signalCode: string | null; once(e: "exit", f: () => void): unknown }, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    child.once("exit", () => {
      clearTimeout(t);
      resolve();
    });
  });
}

function versionOf(text: string | undefined): string | null {
  const first = text?.split("\n").find((l) => l.trim() !== "");
  return first ? first.trim() : null;
}
