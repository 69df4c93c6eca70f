/**
 * The fatal signal: from gdb's `print $_siginfo` (number, si_code, fault
 * address) and/or the "Program terminated with signal ..." line, turned into
 * the result's `Signal` with a one-sentence description an on-call engineer
 * can act on.
 *
 * Signal numbers and si_code values are Linux's generic ones (x86, x86_64,
 * arm, aarch64, ppc, s390, riscv). MIPS, SPARC and Alpha number some signals
 * differently; for those cores the gdb text (which carries the name) wins,
 * because `signalOf` prefers the name gdb printed when there is one.
 */
import type { Frame, Signal } from "../result.js";

/** Linux generic signal numbers. */
const SIGNAL_NAMES: Record<number, string> = {
  1: "SIGHUP",
  2: "SIGINT",
  3: "SIGQUIT",
  4: "SIGILL",
  5: "SIGTRAP",
  6: "SIGABRT",
  7: "SIGBUS",
  8: "SIGFPE",
  9: "SIGKILL",
  10: "SIGUSR1",
  11: "SIGSEGV",
  12: "SIGUSR2",
  13: "SIGPIPE",
  14: "SIGALRM",
  15: "SIGTERM",
  16: "SIGSTKFLT",
  17: "SIGCHLD",
  18: "SIGCONT",
  19: "SIGSTOP",
  20: "SIGTSTP",
  21: "SIGTTIN",
  22: "SIGTTOU",
  23: "SIGURG",
  24: "SIGXCPU",
  25: "SIGXFSZ",
  26: "SIGVTALRM",
  27: "SIGPROF",
  28: "SIGWINCH",
  29: "SIGIO",
  30: "SIGPWR",
  31: "SIGSYS",
};
const SIGNAL_NUMBERS: Record<string, number> = Object.fromEntries(Object.entries(SIGNAL_NAMES).map(([n, name]) => [name, Number(n)]));
// Aliases gdb or other tools print.
SIGNAL_NUMBERS.SIGIOT = 6;
SIGNAL_NUMBERS.SIGPOLL = 29;
SIGNAL_NUMBERS.SIGEMT = 7;

/** `11` -> `SIGSEGV`; null when unknown. */
export function signalName(num: number): string | null {
  return SIGNAL_NAMES[num] ?? null;
}

/** `SIGSEGV` -> 11; null when unknown. */
export function signalNumber(name: string): number | null {
  return SIGNAL_NUMBERS[name] ?? null;
}

/** si_code values any signal can carry (include/uapi/asm-generic/siginfo.h). */
const GENERIC_CODES: Record<number, string> = {
  0: "SI_USER",
  128: "SI_KERNEL",
  [-1]: "SI_QUEUE",
  [-2]: "SI_TIMER",
  [-3]: "SI_MESGQ",
  [-4]: "SI_ASYNCIO",
  [-5]: "SI_SIGIO",
  [-6]: "SI_TKILL",
  [-7]: "SI_DETHREAD",
  [-60]: "SI_ASYNCNL",
};
/** si_code values specific to one signal, valid only when si_code > 0. */
const SIGNAL_CODES: Record<string, Record<number, string>> = {
  SIGSEGV: {
    1: "SEGV_MAPERR",
    2: "SEGV_ACCERR",
    3: "SEGV_BNDERR",
    4: "SEGV_PKUERR",
    5: "SEGV_ACCADI",
    6: "SEGV_ADIDERR",
    7: "SEGV_ADIPERR",
    8: "SEGV_MTEAERR",
    9: "SEGV_MTESERR",
    10: "SEGV_CPERR",
  },
  SIGBUS: { 1: "BUS_ADRALN", 2: "BUS_ADRERR", 3: "BUS_OBJERR", 4: "BUS_MCEERR_AR", 5: "BUS_MCEERR_AO" },
  SIGILL: { 1: "ILL_ILLOPC", 2: "ILL_ILLOPN", 3: "ILL_ILLADR", 4: "ILL_ILLTRP", 5: "ILL_PRVOPC", 6: "ILL_PRVREG", 7: "ILL_COPROC", 8: "ILL_BADSTK", 9: "ILL_BADIADDR" },
  SIGFPE: {
    1: "FPE_INTDIV",
    2: "FPE_INTOVF",
    3: "FPE_FLTDIV",
    4: "FPE_FLTOVF",
    5: "FPE_FLTUND",
    6: "FPE_FLTRES",
    7: "FPE_FLTINV",
    8: "FPE_FLTSUB",
    14: "FPE_FLTUNK",
    15: "FPE_CONDTRAP",
  },
  SIGTRAP: { 1: "TRAP_BRKPT", 2: "TRAP_TRACE", 3: "TRAP_BRANCH", 4: "TRAP_HWBKPT", 5: "TRAP_UNK", 6: "TRAP_PERF" },
  SIGCHLD: { 1: "CLD_EXITED", 2: "CLD_KILLED", 3: "CLD_DUMPED", 4: "CLD_TRAPPED", 5: "CLD_STOPPED", 6: "CLD_CONTINUED" },
  SIGSYS: { 1: "SYS_SECCOMP", 2: "SYS_USER_DISPATCH" },
};

/** Name of an si_code for a signal: `SEGV_MAPERR`, `SI_TKILL`, or the number as text. */
export function codeName(signal: string | null, code: number): string {
  if (code > 0 && code !== 128 && signal) {
    const named = SIGNAL_CODES[signal]?.[code];
    if (named) return named;
  }
  return GENERIC_CODES[code] ?? String(code);
}

/** Signals whose si_addr is the faulting address (others reuse the field for si_pid/si_uid). */
const FAULT_SIGNALS = new Set(["SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGTRAP"]);

export interface Siginfo {
  signo: number | null;
  code: number | null;
  addr: string | null;
  errno: number | null;
  /** `_kill.si_pid` / `_kill.si_uid`: meaningful only for signals sent by a process (si_code <= 0). */
  pid: number | null;
  uid: number | null;
}

/**
 * Reads what gdb prints for `print $_siginfo`:
 * `$1 = {si_signo = 11, si_errno = 0, si_code = 1, ... _sigfault = {si_addr = 0x0, ...}}`.
 * Returns null when gdb could not read it ("Unable to read siginfo", a core
 * without NT_SIGINFO) or the text has no si_signo.
 */
export function parseSiginfo(text: string | null | undefined): Siginfo | null {
  if (!text) return null;
  // Bounded: the siginfo print is ~1 KB; never scan megabytes of pasted text.
  const t = text.length > 65536 ? text.slice(0, 65536) : text;
  if (/Unable to read siginfo|Cannot access memory|has no member|<unavailable>/.test(t) && !/si_signo\s*=/.test(t)) return null;
  const signo = /\bsi_signo\s*=\s*(-?\d+)/.exec(t);
  if (!signo) return null;
  const errno = /\bsi_errno\s*=\s*(-?\d+)/.exec(t);
  const code = /\bsi_code\s*=\s*(-?\d+)/.exec(t);
  // si_addr prints as `0x0`, or with a cast `(void *) 0x...` in some gdb versions.
  const addr = /\bsi_addr\s*=\s*(?:\([^)]{0,40}\)\s*)?(0x[0-9a-fA-F]+)/.exec(t);
  // The union prints every member; `_kill` is the first, with the sender's pid and uid.
  const kill = /\b_kill\s*=\s*\{\s*si_pid\s*=\s*(-?\d+),\s*si_uid\s*=\s*(-?\d+)/.exec(t);
  return {
    signo: Number(signo[1]),
    errno: errno ? Number(errno[1]) : null,
    code: code ? Number(code[1]) : null,
    addr: addr ? addr[1]!.toLowerCase() : null,
    pid: kill ? Number(kill[1]) : null,
    uid: kill ? Number(kill[2]) : null,
  };
}

/**
 * Combines what is known about the fatal signal. siginfo (from the core's
 * NT_SIGINFO note) is the most precise source; gdb's "terminated with
 * signal" line is the fallback and the source of the name on architectures
 * whose numbering differs.
 */
export function signalOf(input: {
  siginfo?: Siginfo | null;
  terminatedBy?: { name: string; description: string } | null;
  /** The crashed process's pid (the core's NT_PRPSINFO): tells a self-sent signal from another process's. */
  processPid?: number | null;
  /** The crash thread's frames: a `<signal handler called>` frame shows a handler that re-raised. */
  crashFrames?: readonly Frame[] | null;
}): Signal | null {
  const si = input.siginfo ?? null;
  const tb = input.terminatedBy ?? null;
  if (!si && !tb) return null;
  let name: string | null = null;
  let number: number | null = null;
  if (tb && /^SIG[A-Z0-9]+$/.test(tb.name)) {
    name = tb.name;
    number = si?.signo ?? signalNumber(tb.name);
  } else if (si?.signo != null) {
    number = si.signo;
    name = signalName(si.signo);
  } else if (tb) {
    name = tb.name;
  }
  const code = si?.code != null ? codeName(name, si.code) : null;
  const kernelSent = si?.code != null && si.code > 0;
  const faultAddress = name && FAULT_SIGNALS.has(name) && kernelSent && si?.addr ? si.addr : null;
  const sender = si?.code != null ? senderOf(si, input.processPid ?? null) : undefined;
  const reraisedIn = sender?.kind === "self" && name !== null && FAULT_SIGNALS.has(name) ? reraiseSite(input.crashFrames ?? []) : null;
  const reraised = reraisedIn !== null;
  return {
    name,
    number,
    code,
    fault_address: faultAddress,
    description: describe({ name, code, addr: faultAddress, gdbText: tb?.description ?? null, sender, reraisedIn }),
    ...(sender ? { sender } : {}),
    ...(reraised ? { reraised: true } : {}),
  };
}

type Sender = NonNullable<Signal["sender"]>;

/** Functions that send a signal: a thread stopped in one of them raised the signal itself. */
const RAISERS = new Set(["kill", "raise", "gsignal", "tgkill", "tkill", "pthread_kill", "pthread_kill_implementation", "pthread_kill_internal", "abort", "syscall"]);

/** `__GI___pthread_kill@@GLIBC_2.34` -> `pthread_kill`: glibc's alias prefixes and symbol versions off. */
function baseName(fn: string): string {
  return fn
    .replace(/@.*$/, "")
    .replace(/^(__GI_|__libc_)+/, "")
    .replace(/^_+/, "");
}

/**
 * Where a fault signal the process sent itself really comes from, when a
 * crash handler re-raised it (null when the thread simply raised it):
 * - the handler raised it while running: the frame below
 *   `<signal handler called>` is the original fault;
 * - the handler raised it and returned: the pending signal is delivered at
 *   the faulting instruction again, so frame #0 is user code, not raise().
 */
function reraiseSite(frames: readonly Frame[]): string | null {
  const handler = frames.findIndex((f) => f.signal_handler);
  if (handler !== -1) return frames[handler + 1]?.function ?? "??";
  const top = frames[0];
  if (!top) return null;
  const inRaise = top.function ? RAISERS.has(baseName(top.function)) : /\blibc\.so/.test(top.library ?? "");
  return inRaise ? null : (top.function ?? "??");
}

/**
 * Who sent it: si_code > 0 (and SI_KERNEL) is the kernel; otherwise a
 * process, `self` when si_pid is the core's own pid. Without the pid,
 * tkill()/tgkill() counts as self (raise, abort and pthread_kill use it;
 * another process almost never does) and kill() as another process.
 */
function senderOf(si: Siginfo, processPid: number | null): Sender {
  const code = si.code!;
  if (code > 0) return { kind: "kernel", pid: null, uid: null };
  const pid = si.pid;
  const uid = si.uid;
  if (processPid !== null && pid !== null) return { kind: pid === processPid ? "self" : "process", pid, uid };
  return { kind: code === -6 ? "self" : "process", pid, uid };
}

/** The sender in words; undefined for a fault the kernel raised. */
function sentBy(sender: Sender | undefined, code: string | null): string | undefined {
  if (code && EVENTS[code]) return EVENTS[code];
  if (!sender || sender.kind === "kernel") return undefined;
  const how = code && HOW[code] ? `sent ${HOW[code]}` : `sent${code ? ` (${code})` : ""}`;
  if (sender.kind === "self") return `${how} by the process itself`;
  const who =
    sender.pid === null
      ? "another process"
      : sender.pid === 0
        ? "a process outside the crashed process's pid namespace (si_pid 0: the node or the container runtime)"
        : `another process (pid ${sender.pid}${sender.uid !== null ? `, uid ${sender.uid}` : ""})`;
  return `${how} by ${who}`;
}

function isNearNull(addr: string): boolean {
  // The first page(s): a null pointer plus a small struct/array offset.
  return BigInt(addr) < 0x10000n;
}

/** How a process sent the signal, by si_code. */
const HOW: Record<string, string> = {
  SI_USER: "with kill()",
  SI_TKILL: "with tkill()/tgkill() (raise(), pthread_kill() or abort())",
  SI_QUEUE: "with sigqueue()",
};
/** Signals no process sent, by si_code. */
const EVENTS: Record<string, string> = {
  SI_TIMER: "sent by a POSIX timer expiring",
  SI_MESGQ: "sent by a POSIX message queue",
  SI_ASYNCIO: "sent on completion of asynchronous I/O",
  SI_SIGIO: "sent for queued SIGIO",
  SI_KERNEL: "sent by the kernel",
};

const LABELS: Record<string, string> = {
  SIGSEGV: "Segmentation fault",
  SIGBUS: "Bus error",
  SIGILL: "Illegal instruction",
  SIGFPE: "Arithmetic exception",
  SIGTRAP: "Trace/breakpoint trap",
  SIGABRT: "Aborted",
  SIGKILL: "Killed",
  SIGQUIT: "Quit",
  SIGTERM: "Terminated",
  SIGSYS: "Bad system call",
  SIGXCPU: "CPU time limit exceeded",
  SIGXFSZ: "File size limit exceeded",
  SIGPIPE: "Broken pipe",
};

function describe(facts: {
  name: string | null;
  code: string | null;
  addr: string | null;
  gdbText: string | null;
  sender: Sender | undefined;
  /** Where the original fault is when a crash handler re-raised the signal. */
  reraisedIn: string | null;
}): string | null {
  const { name, code, addr, gdbText } = facts;
  if (!name) return gdbText;
  const label = LABELS[name] ?? gdbText ?? name;
  if (facts.reraisedIn !== null) {
    return `${label} re-raised by the process's own signal handler (a crash handler): the original fault is in ${facts.reraisedIn}`;
  }
  const sender = sentBy(facts.sender, code);
  if (name === "SIGABRT" && facts.sender?.kind === "process") {
    return `${label}: SIGABRT ${sender}; the process did not call abort() (kill -ABRT, a watchdog or a supervisor asking for a core): its threads show where it was when the signal arrived`;
  }
  // A fault signal sent by software is not a real fault: say so first.
  if (sender && facts.sender?.kind !== "kernel" && name !== "SIGABRT" && name !== "SIGQUIT" && name !== "SIGTERM" && name !== "SIGKILL") {
    return `${label} signal ${sender}, not raised by a hardware fault`;
  }
  switch (name) {
    case "SIGSEGV":
      if (code === "SEGV_MAPERR") {
        if (!addr) return `${label}: access to an unmapped address`;
        if (BigInt(addr) === 0n) return `${label}: address 0x0 is not mapped (null pointer dereference)`;
        if (isNearNull(addr)) return `${label}: address ${addr} is not mapped (null pointer dereference at an offset)`;
        return `${label}: address ${addr} is not mapped (wild or dangling pointer, or stack overflow)`;
      }
      if (code === "SEGV_ACCERR")
        return `${label}: invalid permissions for mapped address ${addr ?? "(unknown)"} (write to read-only memory, execute of non-executable memory, or a stack guard page)`;
      if (code === "SEGV_PKUERR") return `${label}: access to ${addr ?? "an address"} denied by a memory protection key`;
      if (code === "SEGV_MTESERR" || code === "SEGV_MTEAERR") return `${label}: memory tagging (MTE) check failed at ${addr ?? "an address"} (use-after-free or out-of-bounds)`;
      if (code === "SEGV_CPERR") return `${label}: control-flow protection (shadow stack) violation`;
      if (code === "SI_KERNEL") return `${label}: general protection fault raised by the kernel (e.g. a non-canonical address)`;
      return `${label}: invalid memory access${addr ? ` at ${addr}` : ""}`;
    case "SIGBUS":
      if (code === "BUS_ADRALN") return `${label}: misaligned access at address ${addr ?? "(unknown)"}`;
      if (code === "BUS_ADRERR") return `${label}: address ${addr ?? "(unknown)"} has no backing storage (e.g. an mmapped file was truncated, or /dev/shm is full)`;
      if (code === "BUS_OBJERR") return `${label}: object-specific hardware error at ${addr ?? "(unknown)"}`;
      if (code === "BUS_MCEERR_AR" || code === "BUS_MCEERR_AO") return `${label}: uncorrectable hardware memory error (machine check)`;
      return `${label}: invalid memory access${addr ? ` at ${addr}` : ""}`;
    case "SIGFPE": {
      const fpe: Record<string, string> = {
        FPE_INTDIV: "integer division by zero",
        FPE_INTOVF: "integer overflow (e.g. INT_MIN / -1)",
        FPE_FLTDIV: "floating-point division by zero",
        FPE_FLTOVF: "floating-point overflow",
        FPE_FLTUND: "floating-point underflow",
        FPE_FLTRES: "floating-point inexact result",
        FPE_FLTINV: "invalid floating-point operation",
        FPE_FLTSUB: "subscript out of range",
      };
      return `${label}: ${(code && fpe[code]) ?? "arithmetic error"}${addr ? ` at ${addr}` : ""}`;
    }
    case "SIGILL":
      return `${label}${addr ? ` at ${addr}` : ""}${code ? ` (${code})` : ""}: a trap instruction (__builtin_trap, ud2: Rust/Clang aborts, UBSan traps) or code built for a CPU feature this machine lacks`;
    case "SIGTRAP":
      return `${label}: a breakpoint instruction was hit (__builtin_debugtrap, G_BREAKPOINT/g_error, or a leftover debugger breakpoint)`;
    case "SIGABRT":
      return `${label}: the process called abort() (assert failure, uncaught C++ exception, Rust panic=abort, Go panic with GOTRACEBACK=crash, or glibc detected corruption)`;
    case "SIGKILL":
      return `${label}: SIGKILL cannot be caught (OOM killer, a container runtime or kill -9)${sender ? `; ${sender}` : ""}`;
    case "SIGQUIT":
      return `${label}: a core was requested with SIGQUIT (Ctrl-\\ or kill -QUIT)${sender ? `; ${sender}` : ""}`;
    case "SIGTERM":
      return `${label}: asked to terminate${sender ? `; ${sender}` : ""}`;
    case "SIGSYS":
      return code === "SYS_SECCOMP" ? `${label}: a system call was blocked by a seccomp filter` : `${label}: invalid system call`;
    case "SIGXCPU":
      return `${label}: the RLIMIT_CPU limit was reached`;
    case "SIGXFSZ":
      return `${label}: the RLIMIT_FSIZE limit was reached`;
    default:
      return sender ? `${label}: ${sender}` : label;
  }
}
