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
import type { Signal } from "../result.js";

/** Linux generic signal numbers. */
const SIGNAL_NAMES: Record<number, string> = {
  1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
  8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
  14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP",
  20: "SIGTSTP", 21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ",
  26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS",
};
const SIGNAL_NUMBERS: Record<string, number> = Object.fromEntries(
  Object.entries(SIGNAL_NAMES).map(([n, name]) => [name, Number(n)]),
);
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
  0: "SI_USER", 128: "SI_KERNEL", [-1]: "SI_QUEUE", [-2]: "SI_TIMER", [-3]: "SI_MESGQ",
  [-4]: "SI_ASYNCIO", [-5]: "SI_SIGIO", [-6]: "SI_TKILL", [-7]: "SI_DETHREAD", [-60]: "SI_ASYNCNL",
};
/** si_code values specific to one signal, valid only when si_code > 0. */
const SIGNAL_CODES: Record<string, Record<number, string>> = {
  SIGSEGV: { 1: "SEGV_MAPERR", 2: "SEGV_ACCERR", 3: "SEGV_BNDERR", 4: "SEGV_PKUERR", 5: "SEGV_ACCADI", 6: "SEGV_ADIDERR", 7: "SEGV_ADIPERR", 8: "SEGV_MTEAERR", 9: "SEGV_MTESERR", 10: "SEGV_CPERR" },
  SIGBUS: { 1: "BUS_ADRALN", 2: "BUS_ADRERR", 3: "BUS_OBJERR", 4: "BUS_MCEERR_AR", 5: "BUS_MCEERR_AO" },
  SIGILL: { 1: "ILL_ILLOPC", 2: "ILL_ILLOPN", 3: "ILL_ILLADR", 4: "ILL_ILLTRP", 5: "ILL_PRVOPC", 6: "ILL_PRVREG", 7: "ILL_COPROC", 8: "ILL_BADSTK", 9: "ILL_BADIADDR" },
  SIGFPE: { 1: "FPE_INTDIV", 2: "FPE_INTOVF", 3: "FPE_FLTDIV", 4: "FPE_FLTOVF", 5: "FPE_FLTUND", 6: "FPE_FLTRES", 7: "FPE_FLTINV", 8: "FPE_FLTSUB", 14: "FPE_FLTUNK", 15: "FPE_CONDTRAP" },
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
  return {
    signo: Number(signo[1]),
    errno: errno ? Number(errno[1]) : null,
    code: code ? Number(code[1]) : null,
    addr: addr ? addr[1]!.toLowerCase() : null,
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
  return {
    name,
    number,
    code,
    fault_address: faultAddress,
    description: describe(name, code, faultAddress, tb?.description ?? null),
  };
}

function isNearNull(addr: string): boolean {
  // The first page(s): a null pointer plus a small struct/array offset.
  return BigInt(addr) < 0x10000n;
}

const SENDERS: Record<string, string> = {
  SI_USER: "sent by another process with kill()",
  SI_TKILL: "sent with tkill()/tgkill() (raise(), pthread_kill() or abort() in the process itself)",
  SI_QUEUE: "sent with sigqueue()",
  SI_TIMER: "sent by a POSIX timer expiring",
  SI_MESGQ: "sent by a POSIX message queue",
  SI_ASYNCIO: "sent on completion of asynchronous I/O",
  SI_SIGIO: "sent for queued SIGIO",
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

function describe(name: string | null, code: string | null, addr: string | null, gdbText: string | null): string | null {
  if (!name) return gdbText;
  const label = LABELS[name] ?? gdbText ?? name;
  const sender = code ? SENDERS[code] : undefined;
  // A fault signal sent by software is not a real fault: say so first.
  if (sender && name !== "SIGABRT" && name !== "SIGQUIT" && name !== "SIGTERM" && name !== "SIGKILL") {
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
      if (code === "SEGV_ACCERR") return `${label}: invalid permissions for mapped address ${addr ?? "(unknown)"} (write to read-only memory, execute of non-executable memory, or a stack guard page)`;
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
