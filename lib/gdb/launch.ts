/**
 * Starting gdb processes, apart from what they are asked (run.ts).
 *
 * A gdb is started with no file and no command but a bootstrap: `-ex
 * python ...` reads the whole command file (commandFile.ts) from its stdin,
 * compiles it and runs it. So a gdb can be started before its job is known,
 * and its start-up (executable, shared libraries, embedded Python: ~70-80 ms
 * here, about a quarter of a small core's bare `gdb -batch`) overlaps work
 * the worker does anyway: loading its own modules in `analyze`, fetching
 * the next message and downloading the dump in the pool. That gdb is a
 * *prestarted* one; runGdb takes it when it matches (same binary, same
 * environment, same output cap), or starts one as it always did.
 *
 * Nothing a job decides is fixed at start: gdb has read no file and run no
 * command of ours when it waits, so the settings that must hold before any
 * file is read (index cache, sysroot, debug directories) are simply the
 * command file's first lines. What is fixed at start is only what cannot be
 * changed later and never differs between jobs of one worker: `-nx -nh
 * -batch`, `set auto-load off`, debuginfod off, the C locale.
 *
 * A prestarted gdb waits without a time limit (its job's timeout starts when
 * it is taken: run.ts's own timer kills the process group, as for any run)
 * and without CPU. It is in liveGroups and under `setpriv --pdeathsig` like
 * every gdb, and stopPrestartedGdb() ends it: the CLI calls it when its one
 * analysis is done, the worker on stop().
 */
import { accessSync, constants as fsConstants } from "node:fs";
import path from "node:path";
import { execa, type ResultPromise } from "execa";

/** Reads the command file from stdin as bytes (UTF-8 source, as `-x` reads a file), then runs it. */
const BOOTSTRAP = 'python import sys; exec(compile(sys.stdin.buffer.read(), "coresight-commands.py", "exec"))';

/** gdb's output cap when none is configured (GDB_MAX_OUTPUT_BYTES' default): 64 MiB. */
export const DEFAULT_GDB_MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

/** What a started gdb cannot change once started; a run can use a gdb only when its launch is equal. */
export interface GdbLaunch {
  /** The gdb binary (a name on PATH or a path). */
  gdbPath: string;
  /** Lets gdb fetch from these servers (space-separated URLs) into cacheDir; off when null. */
  debuginfod: { urls: string; cacheDir: string } | null;
  /** Cap on gdb's stdout (and, separately, stderr); reaching it kills gdb. */
  maxOutputBytes: number;
}

type GdbSubprocess = ResultPromise<{ reject: false; stdin: "pipe"; stripFinalNewline: false }>;

/** A started gdb: write its command file to `subprocess.stdin` and end it. */
export interface StartedGdb {
  subprocess: GdbSubprocess;
  /** gdb's (or setpriv's, the same process) pid, which is its process group id; undefined when it could not start. */
  pid: number | undefined;
  launch: GdbLaunch;
  /** It was started ahead and waited for its run (prestartGdb), rather than started by the run. */
  prestarted: boolean;
}

/** Process group ids of the gdb processes alive: running a job or waiting for one. */
const liveGroups = new Set<number>();

/** SIGKILLs every gdb process group still alive; returns how many it signalled. */
export function killAllGdb(): number {
  let n = 0;
  for (const pid of liveGroups) {
    if (killGroup(pid)) n++;
  }
  return n;
}

/** SIGKILLs one gdb's whole process group; false when it is already gone. */
export function killGroup(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(-pid, "SIGKILL");
    return true;
  } catch {
    return false; // ESRCH: the group is already gone.
  }
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

/** gdb's arguments: no init files, batch, nothing auto-loaded, debuginfod only when configured, the command file from stdin. */
export function gdbArgs(debuginfod: GdbLaunch["debuginfod"]): string[] {
  return ["-nx", "-nh", "-batch", "-iex", "set auto-load off", "-iex", `set debuginfod enabled ${debuginfod ? "on" : "off"}`, "-ex", BOOTSTRAP];
}

/** gdb's environment on top of ours: the C locale (parsable English), and no Python code from the environment. */
function gdbEnv(debuginfod: GdbLaunch["debuginfod"]): Record<string, string | undefined> {
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

/** The process startGdb starts for `launch`: command, arguments and the environment on top of ours (bench/floor/ spawns the same). */
export function gdbCommand(launch: GdbLaunch): { command: string; args: string[]; env: Record<string, string | undefined> } {
  const [command, args] = deathBound(launch.gdbPath, gdbArgs(launch.debuginfod));
  return { command, args, env: gdbEnv(launch.debuginfod) };
}

/** Starts a gdb that waits for its command file on stdin. Never throws: a gdb that cannot start is a failed subprocess (pid undefined). */
export function startGdb(launch: GdbLaunch): StartedGdb {
  const { command, args, env } = gdbCommand(launch);
  const subprocess = execa(command, args, {
    reject: false,
    stdin: "pipe",
    // Its own process group, so that the whole group can be killed (run.ts).
    detached: true,
    killSignal: "SIGKILL",
    maxBuffer: launch.maxOutputBytes,
    stripFinalNewline: false,
    env,
  });
  // EPIPE when gdb died before reading its command file: the run's result says what happened.
  subprocess.stdin.on("error", () => undefined);
  const pid = subprocess.pid;
  if (pid !== undefined) {
    liveGroups.add(pid);
    void subprocess.then(() => liveGroups.delete(pid));
  }
  return { subprocess, pid, launch, prestarted: false };
}

function sameLaunch(a: GdbLaunch, b: GdbLaunch): boolean {
  return a.gdbPath === b.gdbPath && a.maxOutputBytes === b.maxOutputBytes && JSON.stringify(a.debuginfod) === JSON.stringify(b.debuginfod);
}

/** The prestarted gdb, if any, and whether another is started each time one is taken. */
let waiting: StartedGdb | null = null;
let keepOneReady = false;

/**
 * Starts a gdb for a later run with this launch now, unless one is waiting
 * already. With `keep`, each run that takes it starts the next one (the
 * worker); without, it is one gdb for one run (the CLI). Returns the
 * waiting gdb's pid (undefined when it could not start).
 */
export function prestartGdb(launch: GdbLaunch, opts: { keep?: boolean } = {}): number | undefined {
  keepOneReady = opts.keep ?? false;
  if (waiting && sameLaunch(waiting.launch, launch) && alive(waiting)) return waiting.pid;
  killWaiting();
  waiting = idle(startGdb(launch));
  return waiting.pid;
}

/** The pid of the gdb waiting for a run, if one is alive (diagnostics, tests). */
export function prestartedGdbPid(): number | undefined {
  return waiting && alive(waiting) ? waiting.pid : undefined;
}

/** Kills the waiting gdb, if any, and stops starting new ones. */
export function stopPrestartedGdb(): void {
  keepOneReady = false;
  killWaiting();
}

function killWaiting(): void {
  const w = waiting;
  waiting = null;
  if (w) killGroup(w.pid);
}

/**
 * A waiting gdb does not keep this process alive: a command that ends
 * without taking it (a start-up that failed, an analysis that never reached
 * gdb) exits, and the kernel kills the gdb (pdeathsig). Taken, it does again:
 * the run awaits it.
 */
function idle(g: StartedGdb): StartedGdb {
  for (const h of handles(g)) h.unref?.();
  return g;
}

function busy(g: StartedGdb): StartedGdb {
  for (const h of handles(g)) h.ref?.();
  return g;
}

/** The child and its pipes (net.Socket, typed as plain streams), each of which holds the event loop. */
function handles(g: StartedGdb): Array<{ ref?: () => unknown; unref?: () => unknown }> {
  const s = g.subprocess;
  return [s, s.stdin, s.stdout, s.stderr] as Array<{ ref?: () => unknown; unref?: () => unknown }>;
}

function alive(g: StartedGdb): boolean {
  return g.pid !== undefined && g.subprocess.exitCode === null && g.subprocess.signalCode === null;
}

/**
 * A gdb for a run with this launch: the prestarted one when it matches and
 * is alive, else a new one. With `keep`, taking a matching one (alive or
 * not) starts the next, once this call's caller has written its command file.
 */
export function takeGdb(launch: GdbLaunch): StartedGdb {
  const w = waiting;
  if (w && sameLaunch(w.launch, launch)) {
    waiting = null;
    // The next one, also when this one died while waiting (an OOM kill): the worker keeps one ready from then on.
    if (keepOneReady) {
      setImmediate(() => {
        if (keepOneReady && waiting === null) waiting = idle(startGdb(launch));
      });
    }
    if (alive(w)) return { ...busy(w), prestarted: true };
    killGroup(w.pid);
  }
  return startGdb(launch);
}
