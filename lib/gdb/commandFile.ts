/**
 * The command file of the one gdb run per core.
 *
 * It is a Python script (`gdb -batch -x file.py`), not a CLI command file,
 * because gdb's batch mode abandons a CLI `-x` file at its first error: a
 * core without siginfo, a stripped libc without `__abort_msg` or a missing
 * executable would silently drop every later section. Python's try/except
 * around each `gdb.execute` keeps going and reports the error in-band.
 *
 * Every section starts with a marker line carrying a random nonce, so that
 * nothing the crashed program controls (strings printed by `bt full`, the
 * abort message, file names) can forge a section boundary:
 *
 *   @@CORESIGHT-<nonce> section <name>@@
 *   @@CORESIGHT-<nonce> error <name>@@ <command>: <gdb's message>
 *
 * Order matters: settings, then sysroot / search paths, then the executable
 * and the core (their load output is the "banner" section), the selected
 * thread (the crash thread, from gdb's Python API, never from the banner's
 * text), then the questions. The auto-load and debuginfod settings are NOT here: they must
 * be in effect before gdb reads any file, and never differ between the jobs of one
 * worker, so launch.ts passes them as `-iex`. gdb reads this file from its stdin
 * (launch.ts), having opened no file yet.
 */
import { randomBytes } from "node:crypto";
import { PermanentError } from "../errors.js";

export const SECTIONS = ["version", "settings", "banner", "selected_thread", "sharedlibrary", "backtrace", "siginfo", "registers", "disassembly", "abort_message", "end"] as const;
export type SectionName = (typeof SECTIONS)[number];

export interface CommandFileOptions {
  core: string;
  exe?: string | null;
  sysroot?: string | null;
  solibSearchPath?: string[];
  debugFileDirectories?: string[];
  /** Frames per thread in `thread apply all bt full N`. */
  maxFrames: number;
  nonce: string;
  /** gdb's index cache directory for this run (indexCache.ts builds it); off when absent. */
  indexCacheDir?: string | null;
  /** Extra CLI commands run as their own section, after the standard ones (diagnostics, tests). */
  extraSections?: Array<{ name: string; commands: string[] }>;
}

/** Prints `<thread number> <lwp>` of gdb's selected thread, one line (see parseSelectedThread). */
const SELECTED_THREAD_COMMAND = 'python t = gdb.selected_thread(); gdb.write("%d %d\\n" % (t.num, t.ptid[1]))';

/** A fresh marker nonce: 96 random bits, hex. */
export function newNonce(): string {
  return randomBytes(12).toString("hex");
}

export function sectionMarker(nonce: string, name: string): string {
  return `@@CORESIGHT-${nonce} section ${name}@@`;
}

export function errorMarker(nonce: string, name: string): string {
  return `@@CORESIGHT-${nonce} error ${name}@@`;
}

/**
 * Quotes one argument for gdb commands that split their arguments like a
 * shell (`file`: libiberty's buildargv, where a backslash
 * escapes any character, inside quotes too).
 */
export function quoteGdbArg(arg: string): string {
  return arg.replace(/[^A-Za-z0-9_./+,=@%:-]/g, (c) => `\\${c}`);
}

/**
 * `core-file` takes the rest of the line as the path (after `~` expansion and
 * with trailing blanks dropped), without any quoting.
 */
function rawPathArg(what: string, p: string): string {
  checkPath(what, p, false);
  if (/\s$/.test(p)) throw new PermanentError("invalid_input", `${what} ends with a blank, which gdb would drop: ${JSON.stringify(p)}`);
  return p.startsWith("~") ? `./${p}` : p;
}

/** Settings that take the rest of the line verbatim cannot hold a newline; lists cannot hold ':'. */
export function checkPath(what: string, p: string, inList: boolean): string {
  if (/[\r\n\0]/.test(p)) throw new PermanentError("invalid_input", `${what} contains a newline or NUL: ${JSON.stringify(p)}`);
  if (inList && p.includes(":")) throw new PermanentError("invalid_input", `${what} contains ':', the list separator: ${JSON.stringify(p)}`);
  return p;
}

/** The CLI commands of each section, in order. */
export function sectionCommands(opts: CommandFileOptions): Array<{ name: string; commands: string[] }> {
  if (!Number.isInteger(opts.maxFrames) || opts.maxFrames < 1) throw new PermanentError("invalid_input", `maxFrames must be a positive integer, got ${opts.maxFrames}`);
  const settings = [
    "set pagination off",
    "set height 0",
    "set width 0",
    "set confirm off",
    "set verbose off",
    "set complaints 0",
    "set style enabled off",
    // Scalars in full, aggregates as "...": frame lines stay one readable line.
    "set print frame-arguments scalars",
    "set print pretty off",
    "set print elements 200",
    "set print repeats 10",
    "set print thread-events off",
    "set print inferior-events off",
    // Read code from the executable rather than the core: faster, and the
    // disassembly works even where the core holds no text pages.
    "set trust-readonly-sections on",
  ];
  // Before any file is read: gdb reads an index from the cache, or writes one, as it opens each file.
  if (opts.indexCacheDir) settings.push(`set index-cache directory ${checkPath("index cache directory", opts.indexCacheDir, false)}`);
  if (opts.sysroot) settings.push(`set sysroot ${checkPath("sysroot", opts.sysroot, false)}`);
  if (opts.solibSearchPath?.length) {
    settings.push(`set solib-search-path ${opts.solibSearchPath.map((p) => checkPath("solib-search-path entry", p, true)).join(":")}`);
  }
  if (opts.debugFileDirectories?.length) {
    settings.push(`set debug-file-directory ${opts.debugFileDirectories.map((p) => checkPath("debug-file-directory entry", p, true)).join(":")}`);
  }
  const load: string[] = [];
  if (opts.exe) load.push(`file ${quoteGdbArg(checkPath("executable path", opts.exe, false))}`);
  // The cache is for the libraries, which `core-file` loads: the executable's own index is never kept
  // (indexCache.ts), and gdb 13 writes it while `file` reads the executable when the cache is on, on
  // every run (~60-90 ms for a Rust program's DWARF). A gdb that wrote it later would only waste the write.
  if (opts.indexCacheDir) load.push("set index-cache enabled on");
  load.push(`core-file ${rawPathArg("core path", opts.core)}`);
  return [
    { name: "version", commands: ["show version"] },
    { name: "settings", commands: settings },
    { name: "banner", commands: load },
    // The crash thread, as gdb itself knows it right after loading the core
    // (the signalled thread), printed by the worker's own code: the banner
    // above also holds the crashed process's argv, which can forge any line
    // ("[Current thread is 3 ...]").
    { name: "selected_thread", commands: [SELECTED_THREAD_COMMAND] },
    { name: "sharedlibrary", commands: ["info sharedlibrary"] },
    // One frame more than the limit: a thread that has it was cut, and the
    // result says so (gdb -batch prints no "(More stack frames follow...)").
    { name: "backtrace", commands: [`thread apply all bt full ${opts.maxFrames + 1}`] },
    // C syntax whatever the program's language: in a Rust program gdb would
    // print `siginfo {si_signo: 6, ...}`, and `__abort_msg` needs C casts.
    { name: "siginfo", commands: ["set language c", "print $_siginfo"] },
    // `thread apply all` restores the selected thread: still the crashing one.
    { name: "registers", commands: ["info registers"] },
    { name: "disassembly", commands: ["x/16i $pc"] },
    ...(opts.extraSections ?? []),
  ];
}

/** Frames of the crash thread looked at for abort() before `__abort_msg` is read (glibc: raise, then abort, a few more inlined). */
const ABORT_WALK = 16;

/** Python string literal of `s` (JSON strings are valid Python literals). */
function py(s: string): string {
  return JSON.stringify(s);
}

/**
 * The whole Python script. `abort_message` prints one JSON line:
 * `{"abort_message": "..."}` (or null): glibc's `__abort_msg`, set by
 * assert() and by glibc's fatal errors ("malloc(): corrupted ..."). It is
 * read raw, so that it works without libc's debug info: glibc declares it
 * `struct abort_msg_s { unsigned int size; char msg[0]; } *__abort_msg`
 * (size: of the whole mmap'd block). Only when the crash thread called
 * abort() (`called_abort`): glibc sets it right before, and only then.
 */
export function buildCommandFile(opts: CommandFileOptions): string {
  const sections = sectionCommands(opts);
  for (const s of sections) {
    if (!/^[a-z][a-z0-9_-]*$/.test(s.name)) throw new PermanentError("invalid_input", `bad section name ${JSON.stringify(s.name)}`);
  }
  const lines = [
    "# Generated by coresight-worker (lib/gdb/commandFile.ts). Run: gdb -nx -nh -batch -iex 'set auto-load off' -iex 'set debuginfod enabled off' -x <this file>",
    "import gdb",
    "import json",
    "",
    `SECTION = ${py(sectionMarker(opts.nonce, "{}"))}`,
    `ERROR = ${py(errorMarker(opts.nonce, "{}"))}`,
    "",
    "def section(name):",
    '    gdb.write("\\n" + SECTION.replace("{}", name) + "\\n")',
    "    gdb.flush()",
    "",
    "def run(name, command):",
    "    try:",
    "        gdb.execute(command)",
    "    except Exception as e:",
    '        gdb.write("\\n" + ERROR.replace("{}", name) + " " + command + ": " + " ".join(str(e).split()) + "\\n")',
    "    gdb.flush()",
    "",
    "def called_abort():",
    "    # glibc sets __abort_msg (assert, malloc and fortify checks) only right before it calls abort(), on the",
    "    # thread that aborts, which abort's SIGABRT makes the selected one. Looking the symbol up costs ~50 ms",
    "    # where libc has DWARF (libc6-dbg), so only a thread that called abort() is asked.",
    "    try:",
    "        f = gdb.newest_frame()",
    `        for _ in range(${ABORT_WALK}):`,
    "            if f is None:",
    "                return False",
    '            if f.name() in ("abort", "__GI_abort"):',
    "                return True",
    "            f = f.older()",
    "    except gdb.error:",
    "        pass",
    "    return False",
    "",
    "def abort_message():",
    "    if not called_abort():",
    "        return None",
    "    try:",
    '        addr = int(gdb.parse_and_eval("*(unsigned long *)&__abort_msg"))',
    "    except gdb.error:",
    "        return None  # not glibc, or libc's symbols are missing",
    "    if addr == 0:",
    "        return None",
    "    # Read raw, with or without libc's debug info: { u32 size; char msg[]; }, size = the whole mapping.",
    '    size = int(gdb.parse_and_eval("*(unsigned int *)%d" % addr))',
    "    data = bytes(gdb.selected_inferior().read_memory(addr + 4, max(0, min(size - 4, 65536))))",
    '    return data.split(b"\\0", 1)[0].decode("utf-8", "replace")',
    "",
  ];
  for (const s of sections) {
    lines.push(`section(${py(s.name)})`);
    for (const c of s.commands) lines.push(`run(${py(s.name)}, ${py(c)})`);
  }
  lines.push(
    'section("abort_message")',
    "try:",
    '    gdb.write(json.dumps({"abort_message": abort_message()}) + "\\n")',
    "except Exception as e:",
    '    gdb.write("\\n" + ERROR.replace("{}", "abort_message") + " __abort_msg: " + " ".join(str(e).split()) + "\\n")',
    'section("end")',
    "",
  );
  return lines.join("\n");
}
