/**
 * The panicking goroutine of a Go core: its stack and its panic message.
 *
 * A Go program dumps core on an unrecovered panic only with
 * GOTRACEBACK=crash: after printing the panic, the runtime re-raises it as
 * SIGABRT from the system stack (g0), inside its own signal handler. gdb
 * then shows the signalled thread as `runtime.raise`, `runtime.dieFromSignal`,
 * `runtime.sigtrampgo`, `runtime.sigtramp` and a few `??`: it cannot unwind
 * Go's signal frame (not a glibc `__restore_rt`) nor switch from g0 back to
 * the goroutine's own stack. The user's frames are in no thread's backtrace.
 *
 * The goroutine's stack is in the core, though. The runtime keeps every
 * goroutine in `runtime.allgs`; the panicking one has `g._panic` set, and
 * `systemstack` saved its pc and frame pointer in `g.sched` when the panic
 * switched to g0. Go on amd64 and arm64 always keeps frame pointers, so the
 * probe walks `[bp] = caller's bp, [bp+8] = return address` from there,
 * naming each pc with gdb's symbols and line table. Registers cannot be set
 * on a core (gdb: "You can't do that without a process to debug"), so gdb's
 * own unwinder cannot be pointed at the goroutine. Known limits of the walk:
 * a frameless leaf (Go gives none to small leaf functions) between two frames
 * is skipped, and an inlined call shows as its innermost function only.
 *
 * The panic message is read only where its layout is fixed: a `string`
 * panic value, the runtime's `runtime.errorString` ("runtime error: ..."),
 * `runtime.plainError` and `*errors.errorString`. Any other value needs its
 * Error() method run, which a core cannot do; no message beats a wrong one.
 * The value's type name is decoded from the runtime `_type` (its `str`
 * name offset into `firstmoduledata.types`, Go >= 1.17 varint layout).
 *
 * Like the C++ probe (runtime.ts), this is one section of the one gdb run
 * per core, silent unless the program is Go and a goroutine is panicking.
 */
import type { Frame, Goroutine as ResultGoroutine, Thread } from "../../result.js";
import type { Backtrace } from "../parseBacktrace.js";
import { parseBacktrace } from "../parseBacktrace.js";
import { GO_SIGNAL_FRAMES } from "../crash.js";

/** Name of the probe's section in the command file. */
export const GO_SECTION = "go";

/** Frames walked on the panicking goroutine's stack; deeper stacks are cut here. */
const MAX_GO_FRAMES = 64;
/** Frames walked on every other goroutine's stack (enough to see where it waits and what started it). */
export const MAX_GOROUTINE_FRAMES = 16;
/** Goroutines listed at most (a server can have a million; the first ones are the runtime's and main's). */
export const MAX_GOROUTINES = 1000;
/** Entries of runtime.allgs looked at, dead ones included. */
const MAX_GOROUTINES_SCANNED = 100000;

const PROBE = String.raw`
import gdb, json, struct

# runtime/runtime2.go: the g status values (the 0x1000 bit is _Gscan).
STATUS = {0: "idle", 1: "runnable", 2: "running", 3: "syscall", 4: "waiting", 6: "dead", 8: "copystack", 9: "preempted"}

def program():
    # The executable's objfile: Go links its runtime into the executable, so
    # runtime symbols are looked up there only. A global lookup would search
    # every library's DWARF too (libc6-dbg: ~20 ms of every non-Go core).
    exe = gdb.current_progspace().filename
    if exe is None:
        return None
    return next((o for o in gdb.objfiles() if o.filename == exe), None)

PROGRAM = program()

def sym(name):
    if PROGRAM is not None:
        s = PROGRAM.lookup_global_symbol(name) or PROGRAM.lookup_static_symbol(name)
    else:
        s = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
    return s.value() if s is not None else None

def walk(g, word, ptr, limit):
    # A goroutine's saved pc and frame pointer (g.sched), then the frame-pointer chain.
    lo, hi = int(g["stack"]["lo"]), int(g["stack"]["hi"])
    pc, bp = int(g["sched"]["pc"]), int(g["sched"]["bp"])
    lines = []
    prev = None
    last = False
    for n in range(limit):
        if pc == 0:
            break
        # A return address points after the call; the frame sigpanic was
        # injected above holds the faulting pc itself.
        look = pc if n == 0 or prev == "runtime.sigpanic" else pc - 1
        b = None
        try:
            b = gdb.block_for_pc(look)
        except RuntimeError:
            pass
        while b is not None and b.function is None:
            b = b.superblock
        name = b.function.name if b is not None else None
        if name is None:
            s = gdb.execute("info symbol 0x%x" % look, to_string=True)
            name = None if s.startswith("No symbol") else s.split(" in section ")[0].split(" + ")[0].strip()
        sal = gdb.find_pc_line(look)
        where = " at %s:%d" % (sal.symtab.filename, sal.line) if sal.symtab is not None and sal.line else ""
        lines.append("#%-3d0x%016x in %s ()%s" % (n, pc, name or "??", where))
        prev = name
        if last or name == "runtime.goexit" or not (lo <= bp < hi) or bp % ptr:
            break
        pc, nbp = word(bp + ptr), word(bp)
        # The outermost frame (runtime.goexit) has bp 0: named, then the walk
        # ends. A bp that does not grow toward the stack's top ends it too.
        last = nbp <= bp
        bp = nbp
    return lines

def field(g, name):
    v = g[name]
    try:
        return int(v)
    except gdb.error:
        return int(v["value"])  # Go >= 1.20: atomic.Uint32

def wait_reason(g, word, inf):
    try:
        r = int(g["waitreason"])
        strings = sym("runtime.waitReasonStrings")
        if strings is None or r == 0:
            return None
        return go_string(int(strings[r].address), word, inf) or None
    except Exception:
        return None

def main():
    allgs = sym("runtime.allgs")
    if allgs is None:
        return
    inf = gdb.selected_inferior()
    ptr = gdb.lookup_type("void").pointer().sizeof
    fmt = "<Q" if ptr == 8 else "<I"
    def word(a):
        return struct.unpack(fmt, bytes(inf.read_memory(a, ptr)))[0]
    gs = [allgs["array"][i] for i in range(min(int(allgs["len"]), ${MAX_GOROUTINES_SCANNED}))]
    g = None
    for c in gs:
        if int(c["_panic"]) != 0 and (g is None or int(c["m"]) != 0):
            g = c
            if int(c["m"]) != 0:
                break  # the running one: the panic that is killing the program
    out = {"goid": None, "panic_message": None}
    lines = []
    if g is not None:
        out["goid"] = int(g["goid"])
        lines = walk(g, word, ptr, ${MAX_GO_FRAMES})
        try:
            out["panic_message"] = message(g["_panic"]["arg"], word, inf)
        except Exception:
            pass
    gdb.write(json.dumps(out) + "\n" + "".join(l + "\n" for l in lines))
    listed = 0
    for c in gs:
        try:
            status = field(c, "atomicstatus") & ~0x1000
            if status == 6 or listed >= ${MAX_GOROUTINES}:
                continue
            listed += 1
            head = {"goid": int(c["goid"]), "status": STATUS.get(status, str(status)), "wait_reason": wait_reason(c, word, inf) if status == 4 else None}
            frames = walk(c, word, ptr, ${MAX_GOROUTINE_FRAMES})
        except Exception:
            continue
        gdb.write("goroutine " + json.dumps(head) + "\n" + "".join(l + "\n" for l in frames))

def type_name(t, word, inf):
    md = sym("runtime.firstmoduledata")
    base = int(md["types"])
    nameoff = int(t.dereference()["str"])
    tflag = int(t.dereference()["tflag"])
    p = base + nameoff
    raw = bytes(inf.read_memory(p, 12))
    n, shift, i = 0, 0, 1
    while True:
        c = raw[i]
        n |= (c & 0x7f) << shift
        i += 1
        shift += 7
        if c < 0x80 or i >= 11:
            break
    if n <= 0 or n > 512:
        return None
    name = bytes(inf.read_memory(p + i, n)).decode("ascii")
    if tflag & 2 and name.startswith("*"):  # tflagExtraStar
        name = name[1:]
    return name

def go_string(addr, word, inf):
    data, n = word(addr), word(addr + 8)
    if n < 0 or n > 65536:
        return None
    return bytes(inf.read_memory(data, n)).decode("utf-8", "replace") if n else ""

def message(arg, word, inf):
    t, data = arg["_type"], int(arg["data"])
    if int(t) == 0 or data == 0:
        return None
    name = type_name(t, word, inf)
    if name == "string" or name == "runtime.plainError":
        return go_string(data, word, inf)
    if name == "runtime.errorString":
        s = go_string(data, word, inf)
        return None if s is None else "runtime error: " + s
    if name == "*errors.errorString":
        return go_string(data, word, inf)
    return None

main()
`;

/**
 * The probe as a command-file section (one `python exec(...)` line with its
 * own globals, like the C++ probe): silent for non-Go cores and for Go
 * cores without a panicking goroutine.
 */
export function goProbeSection(): { name: string; commands: string[] } {
  return { name: GO_SECTION, commands: [`python exec(${JSON.stringify(PROBE)}, {})`] };
}

/** One goroutine of the core, as runtime.allgs holds it (dead ones are not listed). */
export interface Goroutine {
  goid: number;
  /** runtime/runtime2.go's g status without the scan bit: idle, runnable, running, syscall, waiting, copystack, preempted. */
  status: string;
  /** Why a waiting goroutine waits ("chan receive", "select", "GC worker (idle)"), from the core's runtime.waitReasonStrings. */
  wait_reason: string | null;
  /** Its stack from its saved pc (g.sched), innermost first, at most MAX_GOROUTINE_FRAMES. */
  frames: Frame[];
}

export interface GoProbe {
  /** The panicking goroutine; null when none is. */
  goid: number | null;
  /** Frames of the panicking goroutine, innermost first (gdb backtrace form); empty when none is panicking. */
  frames: Frame[];
  panic_message: string | null;
  /** Every goroutine that is not dead, in runtime.allgs order. */
  goroutines: Goroutine[];
}

/**
 * Reads the go section: a JSON line and the panicking goroutine's frames,
 * then one `goroutine {json}` line and its frames per goroutine. Null when
 * empty or unreadable (not a Go core).
 */
export function parseGoSection(text: string | undefined): GoProbe | null {
  if (!text) return null;
  const blocks = text.split(/^(?=goroutine \{)/m);
  const lines = blocks[0]!.split("\n");
  const head = lines.findIndex((l) => l.startsWith("{"));
  if (head === -1) return null;
  const j = jsonLine(lines[head]!) as { goid?: unknown; panic_message?: unknown } | null;
  if (j === null) return null;
  const goid = typeof j.goid === "number" ? j.goid : null;
  const frames = goid === null ? [] : framesOf(lines.slice(head + 1));
  const message = typeof j.panic_message === "string" && j.panic_message !== "" ? j.panic_message : null;
  const goroutines = blocks.slice(1).flatMap((b) => {
    const [first, ...rest] = b.split("\n");
    const g = jsonLine(first!.slice("goroutine ".length)) as { goid?: unknown; status?: unknown; wait_reason?: unknown } | null;
    if (g === null || typeof g.goid !== "number" || typeof g.status !== "string") return [];
    return [{ goid: g.goid, status: g.status, wait_reason: typeof g.wait_reason === "string" ? g.wait_reason : null, frames: framesOf(rest) }];
  });
  if (frames.length === 0 && goroutines.length === 0) return null;
  return { goid: frames.length > 0 ? goid : null, frames, panic_message: message, goroutines };
}

function jsonLine(line: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function framesOf(lines: string[]): Frame[] {
  return parseBacktrace(lines.join("\n")).threads[0]?.frames ?? [];
}

/**
 * The backtrace with the panicking goroutine's frames put on the thread
 * that ran it: the signalled thread's own frames down to Go's signal
 * trampoline, a `<signal handler called>` frame (the thread was in the
 * handler; what it interrupted on g0 is lost), then the goroutine's frames.
 * Unchanged when no thread shows Go's signal trampoline.
 *
 * @param crashThread the crash thread's number (findCrashThread on `bt`)
 */
export function withPanickingGoroutine(bt: Backtrace, crashThread: number | null, probe: GoProbe): Backtrace {
  const thread = bt.threads.find((t) => t.number === crashThread);
  if (!thread || probe.frames.length === 0) return bt;
  let last = -1;
  thread.frames.forEach((f, i) => {
    if (f.function !== null && GO_SIGNAL_FRAMES.has(f.function)) last = i;
  });
  if (last === -1) return bt;
  const own = thread.frames.slice(0, last + 1);
  const marker: Frame = { index: own.length, address: null, function: null, args: null, file: null, line: null, library: null, inline: false, signal_handler: true };
  const goroutine = probe.frames.map((f, i) => ({ ...f, index: own.length + 1 + i }));
  const spliced: Thread = { ...thread, frames: [...own, marker, ...goroutine], backtrace_stopped: null };
  return { ...bt, threads: bt.threads.map((t) => (t === thread ? spliced : t)) };
}

/** The probe's goroutines as the result lists them: the panicking one marked, the executable's frames in-app (Go links statically). */
export function goroutinesOf(probe: GoProbe): ResultGoroutine[] {
  return probe.goroutines.map((g) => ({
    goid: g.goid,
    status: g.status,
    wait_reason: g.wait_reason,
    panicking: g.goid === probe.goid,
    frames: g.frames,
  }));
}
