/**
 * The uncaught C++ exception's type and what() message, recovered from a core.
 *
 * Neither is in the backtrace: without libstdc++'s debug info `__cxa_throw`
 * shows no `tinfo=` argument. But libstdc++'s terminate path leaves both on
 * the crash thread's stack between frame #0 and the `__cxa_throw` frame: a
 * pointer to the thrown type's `typeinfo for T` (what __cxa_throw was given,
 * spilled by it and by the verbose terminate handler), and a pointer to the
 * thrown object, whose first word is its vtable. A gdb Python probe scans
 * those words and asks gdb what each points at (`info symbol`).
 *
 * The message is read only where the layout is known: for GCC's
 * std::logic_error / std::runtime_error families (and, with DWARF, classes
 * derived from them) the member after the vptr is a COW string whose pointer
 * points at the characters. A custom what() computed at call time cannot be
 * recovered from a core; no message is better than a wrong one.
 *
 * This is a second, short gdb run, made only when the crash thread has a
 * `__cxa_throw`/`__cxa_rethrow` frame.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { execa } from "execa";
import type { Result } from "../result.js";

const MARK = "@@CORESIGHT-RUNTIME@@";
const THROW_FRAMES = new Set(["__cxa_throw", "__cxa_rethrow", "_Unwind_Resume_or_Rethrow"]);

/** True when the crash thread died of a C++ throw (a frame in __cxa_throw/__cxa_rethrow). */
export function hasCxxThrow(result: Result): boolean {
  const t = result.threads.find((x) => x.number === result.crash_thread);
  return !!t?.frames.some((f) => f.function !== null && THROW_FRAMES.has(f.function.replace(/\s*\(.*$/, "")));
}

const PROBE = String.raw`
import gdb, json, struct

THROW = ("__cxa_throw", "__cxa_rethrow", "_Unwind_Resume_or_Rethrow")
STD_MSG = ("std::runtime_error", "std::logic_error", "std::range_error", "std::overflow_error",
           "std::underflow_error", "std::domain_error", "std::invalid_argument", "std::length_error",
           "std::out_of_range", "std::system_error", "std::ios_base::failure")

def symbol_at(addr):
    try:
        s = gdb.execute("info symbol 0x%x" % addr, to_string=True).strip()
    except gdb.error:
        return None
    if s.startswith("No symbol"):
        return None
    return s.split(" in section ")[0]

def strip_version(name):
    return name.split("@")[0].strip()

def derives_from_std_msg(name, depth=0):
    if name in STD_MSG:
        return True
    if depth > 8:
        return False
    try:
        t = gdb.lookup_type(name).strip_typedefs()
        for f in t.fields():
            base = f.type.strip_typedefs()
            if f.is_base_class and derives_from_std_msg(base.tag or base.name or str(base), depth + 1):
                return True
    except Exception:
        pass
    return False

out = {"exception_type": None, "exception_message": None}
try:
    ptr = gdb.lookup_type("void").pointer().sizeof
    little = "little" in gdb.execute("show endian", to_string=True)
    fmt = ("<" if little else ">") + ("Q" if ptr == 8 else "I")
    inf = gdb.selected_inferior()
    def word(addr):
        return struct.unpack(fmt, bytes(inf.read_memory(addr, ptr)))[0]

    gdb.execute("thread 1", to_string=True)  # gdb numbers the signalled thread 1 in a core
    f = gdb.newest_frame()
    throw = None
    while f is not None:
        if f.name() in THROW:
            throw = f
            break
        f = f.older()
    if throw is not None:
        lo = int(gdb.newest_frame().read_register("sp"))
        caller = throw.older()
        hi = int(caller.read_register("sp")) if caller is not None else lo + 8192
        hi = min(hi, lo + 65536)
        mem = bytes(inf.read_memory(lo, hi - lo))
        words = [struct.unpack_from(fmt, mem, o)[0] for o in range(0, len(mem) - ptr + 1, ptr)]
        for v in words:
            s = symbol_at(v) if v > 0x10000 else None
            if s and s.startswith("typeinfo for ") and " + " not in s:
                out["exception_type"] = strip_version(s[len("typeinfo for "):])
                break
        t = out["exception_type"]
        if t:
            for v in words:
                if v <= 0x10000:
                    continue
                try:
                    vt = symbol_at(word(v))
                except Exception:
                    continue
                if vt and strip_version(vt.split(" + ")[0]) == "vtable for " + t:
                    if derives_from_std_msg(t):
                        msg = bytes(inf.read_memory(word(v + ptr), 4096)).split(b"\0")[0]
                        out["exception_message"] = msg.decode("utf-8", "replace")
                    break
except Exception as e:
    out["error"] = str(e)
gdb.write("${MARK}" + json.dumps(out) + "\n")
`;

export interface RuntimeProbe {
  exception_type: string | null;
  exception_message: string | null;
}

/** Parses the probe's output line; null when it printed none. */
export function parseRuntimeProbe(stdout: string): RuntimeProbe | null {
  const line = stdout.split("\n").find((l) => l.startsWith(MARK));
  if (!line) return null;
  try {
    const j = JSON.parse(line.slice(MARK.length)) as Partial<RuntimeProbe>;
    return { exception_type: j.exception_type ?? null, exception_message: j.exception_message ?? null };
  } catch {
    return null;
  }
}

/**
 * Runs the probe with the same files gdb analyzed with. Null when gdb fails
 * or finds nothing; never throws (the analysis is complete without it).
 */
export async function probeCxxException(opts: {
  core: string;
  exe: string | null;
  sysroot: string;
  solibSearchPath: string[];
  debugFileDirectories: string[];
  gdbPath: string;
  workDir: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}): Promise<RuntimeProbe | null> {
  const script = path.join(opts.workDir, "runtime-probe.py");
  try {
    await fs.writeFile(script, PROBE);
    const iex = [
      "set auto-load off",
      "set debuginfod enabled off",
      "set pagination off",
      `set sysroot ${opts.sysroot}`,
      `set solib-search-path ${opts.solibSearchPath.join(":")}`,
      `set debug-file-directory ${opts.debugFileDirectories.join(":")}`,
    ].flatMap((c) => ["-iex", c]);
    // Positional exe/core: no quoting of paths through gdb's command parser.
    const files = opts.exe ? [opts.exe, opts.core] : ["--core", opts.core];
    const r = await execa(opts.gdbPath, ["-nx", "-nh", "-batch", ...iex, "-x", script, ...files], {
      reject: false,
      timeout: opts.timeoutMs ?? 60_000,
      ...(opts.signal ? { cancelSignal: opts.signal } : {}),
      env: { DEBUGINFOD_URLS: "" },
      maxBuffer: 4 * 1024 * 1024,
    });
    const got = parseRuntimeProbe(r.stdout);
    return got && (got.exception_type || got.exception_message) ? got : null;
  } catch {
    return null;
  } finally {
    await fs.rm(script, { force: true });
  }
}
