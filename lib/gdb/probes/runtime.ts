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
 * The probe is one section ("runtime") of the one gdb run per core
 * (lib/analyze.ts always adds it): a second gdb process would pay gdb's
 * start-up and symbol loading again. It decides by itself whether there is
 * anything to do: it walks the first frames of the selected thread (the
 * crashing one: `thread apply all` restores the selection) and, without a
 * `__cxa_throw`/`__cxa_rethrow` frame there, prints nothing.
 */

/** Name of the probe's section in the command file. */
export const RUNTIME_SECTION = "runtime";

/**
 * Frames walked looking for the throw: the terminate path puts __cxa_throw
 * about 6 frames below frame #0 (raise, abort, verbose terminate handler,
 * __terminate, terminate, __cxa_throw), a few more with inlined frames. The
 * bound keeps a deep stack (a stack overflow) from being unwound past what
 * the backtrace section already unwound.
 */
const MAX_WALK = 32;

const PROBE = String.raw`
import gdb, json, struct

THROW = ("__cxa_throw", "__cxa_rethrow", "_Unwind_Resume_or_Rethrow")
STD_MSG = ("std::runtime_error", "std::logic_error", "std::range_error", "std::overflow_error",
           "std::underflow_error", "std::domain_error", "std::invalid_argument", "std::length_error",
           "std::out_of_range", "std::system_error", "std::ios_base::failure")

def throw_frame():
    try:
        f = gdb.newest_frame()
        for _ in range(${MAX_WALK}):
            if f is None:
                return None
            if f.name() in THROW:
                return f
            f = f.older()
    except gdb.error:
        pass  # an unwinding error: whatever is below is not trustworthy
    return None

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

def probe(throw):
    out = {"exception_type": None, "exception_message": None}
    ptr = gdb.lookup_type("void").pointer().sizeof
    little = "little" in gdb.execute("show endian", to_string=True)
    fmt = ("<" if little else ">") + ("Q" if ptr == 8 else "I")
    inf = gdb.selected_inferior()
    def word(addr):
        return struct.unpack(fmt, bytes(inf.read_memory(addr, ptr)))[0]

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
    return out

throw = throw_frame()
if throw is not None:
    # C++ names ("app::ConfigError") need C++ parsing; the siginfo section
    # set C, which the sections after this one rely on.
    language = gdb.parameter("language")
    try:
        gdb.execute("set language c++")
        out = probe(throw)
    except Exception as e:
        out = {"exception_type": None, "exception_message": None, "error": " ".join(str(e).split())}
    finally:
        gdb.execute("set language " + language)
    gdb.write(json.dumps(out) + "\n")
`;

/**
 * The probe as a command-file section: `python exec(...)` on one line, since
 * a section holds CLI commands and the command file runs each through
 * `gdb.execute`, in its own try/except (a probe error lands in the run's
 * in-band errors, never stops the sections after it). Its own globals
 * (`{}`), so that its names cannot shadow the command file's.
 */
export function runtimeProbeSection(): { name: string; commands: string[] } {
  return { name: RUNTIME_SECTION, commands: [`python exec(${JSON.stringify(PROBE)}, {})`] };
}

export interface RuntimeProbe {
  exception_type: string | null;
  exception_message: string | null;
}

/**
 * Reads the runtime section: one JSON line when the crash thread threw, empty
 * otherwise. Null when there was no throw, or when the probe found neither
 * the type nor the message.
 */
export function parseRuntimeSection(text: string | undefined): RuntimeProbe | null {
  if (!text) return null;
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const j = JSON.parse(line) as { exception_type?: unknown; exception_message?: unknown };
      const type = typeof j.exception_type === "string" && j.exception_type !== "" ? j.exception_type : null;
      const message = typeof j.exception_message === "string" ? j.exception_message : null;
      return type || message ? { exception_type: type, exception_message: message } : null;
    } catch {
      // not the probe's line
    }
  }
  return null;
}
