/**
 * Runs gdb on one core: exactly one gdb process, batch mode, one generated
 * command file (commandFile.ts), output split into sections (sections.ts).
 *
 * Safe by default: no init files (`-nx -nh`), no auto-loaded scripts
 * (`set auto-load off`: a core's binary can carry `.debug_gdb_scripts` or an
 * `<objfile>-gdb.py` that would otherwise run as Python on the worker), no
 * network (`set debuginfod enabled off` unless debuginfod URLs are given).
 * Both are `-iex`: they must hold before gdb opens any file, and `-ex`/`-x`
 * run after gdb has read the files named on its command line.
 *
 * Bounded: a timeout, an AbortSignal and an output cap each end the run; gdb
 * runs in its own process group (`detached`) and the whole group is killed,
 * so nothing it started can outlive it.
 *
 * Dies with its worker: being in its own group, gdb is not reached when the
 * worker's group is killed (SIGKILL, OOM kill), so it is started through
 * `setpriv --pdeathsig KILL` (util-linux) when that exists: the kernel kills
 * gdb when the worker dies (PR_SET_PDEATHSIG, out of node's reach; it
 * survives setpriv's exec). And `killAllGdb()` ends every live gdb group at
 * once, for a worker that exits without waiting (a second SIGTERM).
 */
import { DEFAULT_MAX_FRAMES } from "../config.js";
import fs from "node:fs/promises";
import { accessSync, constants as fsConstants } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa, type Result } from "execa";
import { GdbTimeoutError, PermanentError, toError } from "../errors.js";
import { buildCommandFile, checkPath, newNonce, type CommandFileOptions } from "./commandFile.js";
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
  /** Called with gdb's pid (= its process group id) once it has started. */
  onSpawn?: (pid: number) => void;
  /** Where the command file is written (a private subdirectory, removed afterwards). Default: the OS temp dir. */
  tmpDir?: string;
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
}

export const DEFAULT_TIMEOUT_MS = 300_000;
export const DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024 * 1024;
export { DEFAULT_MAX_FRAMES };

/** Process group ids of the gdb runs in progress. */
const liveGroups = new Set<number>();

/** SIGKILLs every gdb process group still running; returns how many it signalled. */
export function killAllGdb(): number {
  let n = 0;
  for (const pid of liveGroups) {
    try {
      process.kill(-pid, "SIGKILL");
      n++;
    } catch {
      // ESRCH: already gone.
    }
  }
  return n;
}

/** The executable a bare name resolves to on PATH (or the path itself), null when none. */
function which(file: string): string | null {
  const candidates = file.includes("/")
    ? [file]
    : (process.env.PATH ?? "")
        .split(path.delimiter)
        .filter(Boolean)
        .map((d) => path.join(d, file));
  for (const c of candidates) {
    try {
      accessSync(c, fsConstants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  return null;
}

let setprivPath: string | null | undefined;
/** `[command, args]` that start gdb so that it dies with this process (setpriv --pdeathsig KILL), or gdb itself. */
function deathBound(gdbPath: string, args: string[]): [string, string[]] {
  setprivPath ??= which("setpriv");
  // Only for a gdb that exists: a missing one must still fail as ENOENT (gdb_not_installed), not as setpriv's exit 127.
  if (!setprivPath || which(gdbPath) === null) return [gdbPath, args];
  return [setprivPath, ["--pdeathsig", "KILL", "--", gdbPath, ...args]];
}

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
    ...(opts.extraSections ? { extraSections: opts.extraSections } : {}),
  });
  opts.signal?.throwIfAborted();

  const dir = await fs.mkdtemp(path.join(opts.tmpDir ?? os.tmpdir(), "coresight-gdb-"));
  const file = path.join(dir, "commands.py");
  let progress: NodeJS.Timeout | undefined;
  let timer: NodeJS.Timeout | undefined;
  let pid: number | undefined;
  let timedOut = false;
  const killGroup = () => {
    if (pid === undefined) return;
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // ESRCH: the group is already gone.
    }
  };
  const onAbort = () => killGroup();
  try {
    await fs.writeFile(file, commandFile, { mode: 0o600 });
    const started = performance.now();
    const [command, commandArgs] = deathBound(gdbPath, gdbArgs(file, opts.debuginfod ?? null, opts.indexCacheDir ?? null));
    const subprocess = execa(command, commandArgs, {
      reject: false,
      stdin: "ignore",
      detached: true,
      timeout: timeoutMs,
      forceKillAfterDelay: 2000,
      killSignal: "SIGKILL",
      maxBuffer: maxOutputBytes,
      stripFinalNewline: false,
      ...(opts.signal ? { cancelSignal: opts.signal } : {}),
      env: gdbEnv(opts.debuginfod ?? null),
    });
    pid = subprocess.pid;
    if (pid !== undefined) liveGroups.add(pid);
    if (pid !== undefined) opts.onSpawn?.(pid);
    // Our own timer and abort listener kill the whole group at once; execa's
    // timeout and cancelSignal only reach gdb itself.
    timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    if (opts.onProgress) progress = setInterval(opts.onProgress, opts.progressIntervalMs ?? 2000);
    const r = await subprocess;
    const durationMs = Math.round(performance.now() - started);
    if (r.timedOut || timedOut || r.isCanceled || r.isMaxBuffer || opts.signal?.aborted) {
      // execa settles as soon as it has sent the kill, not when gdb is gone:
      // kill the group and wait for gdb's exit so that nothing outlives us.
      killGroup();
      await exited(subprocess, 5000);
    }
    return runOf(r, { gdbPath, core: opts.core, timeoutMs, started: pid !== undefined, timedOut, durationMs, nonce, commandFile, ...(opts.signal ? { signal: opts.signal } : {}) });
  } finally {
    if (pid !== undefined) liveGroups.delete(pid);
    clearTimeout(timer);
    clearInterval(progress);
    opts.signal?.removeEventListener("abort", onAbort);
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** gdb's arguments: no init files, batch, nothing auto-loaded, debuginfod only when configured, our command file. */
function gdbArgs(commandFile: string, debuginfod: GdbRunOptions["debuginfod"] | null, indexCacheDir: string | null): string[] {
  const index = indexCacheDir ? ["-iex", `set index-cache directory ${checkPath("index cache directory", indexCacheDir, false)}`, "-iex", "set index-cache enabled on"] : [];
  return ["-nx", "-nh", "-batch", "-iex", "set auto-load off", "-iex", `set debuginfod enabled ${debuginfod ? "on" : "off"}`, ...index, "-x", commandFile];
}

/** gdb's environment on top of ours: the C locale (parsable English), and no Python code from the environment. */
function gdbEnv(debuginfod: GdbRunOptions["debuginfod"] | null): Record<string, string | undefined> {
  return {
    LC_ALL: "C",
    LANG: "C",
    // gdb's embedded Python must not import code from the environment.
    PYTHONPATH: undefined,
    PYTHONHOME: undefined,
    PYTHONSTARTUP: undefined,
    PYTHONNOUSERSITE: "1",
    DEBUGINFOD_URLS: debuginfod ? debuginfod.urls : "",
    ...(debuginfod ? { DEBUGINFOD_CACHE_PATH: debuginfod.cacheDir } : {}),
  };
}

/**
 * What a finished execa run means: the GdbRun, or the error that says why
 * there is none (not installed, could not start, timed out, aborted).
 */
function runOf(
  r: Result,
  ctx: { gdbPath: string; core: string; timeoutMs: number; started: boolean; timedOut: boolean; durationMs: number; nonce: string; commandFile: string; signal?: AbortSignal },
): GdbRun {
  if (r.failed && r.code === "ENOENT" && !ctx.started) {
    throw new PermanentError("gdb_not_installed", `gdb not found: ${ctx.gdbPath} (install gdb or pass its path)`, { cause: r });
  }
  if (r.failed && !ctx.started) throw new PermanentError("gdb_failed", `could not start ${ctx.gdbPath}: ${r.shortMessage}`, { cause: r });
  if (r.timedOut || ctx.timedOut) throw new GdbTimeoutError(`gdb did not finish within ${ctx.timeoutMs} ms on ${ctx.core}`, { cause: r });
  if (r.isCanceled || ctx.signal?.aborted) throw toError(ctx.signal?.reason ?? new Error("gdb run aborted"));
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
