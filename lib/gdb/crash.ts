/**
 * Which thread crashed, and which of its frames is the user's code.
 *
 * The crash frame is the first frame below the runtime machinery that turns
 * a bug into a signal: the kernel's signal trampoline, raise/abort, assert,
 * C++ terminate/throw/unwind, Rust panic, the Go runtime's panic and signal
 * handling, and glibc's own corruption checks.
 * Frames of a user signal handler (above `<signal handler called>`) are not
 * the crash either: the fault happened in the frame below the trampoline.
 */
import type { Frame, Thread } from "../result.js";
import type { Backtrace } from "./parseBacktrace.js";

/**
 * The `selected_thread` section of the command file: `<number> <lwp>`, what
 * gdb's Python API says its selected thread is right after loading the core.
 * Null when absent or not that shape (no core loaded, an older command file).
 */
export function parseSelectedThread(text: string | undefined): { number: number; lwp: number } | null {
  const m = /^(\d+) (\d+)$/.exec((text ?? "").trim());
  return m ? { number: Number(m[1]), lwp: Number(m[2]) } : null;
}

/**
 * The crash thread's number. Order: `hints.selected`, gdb's selected thread
 * as the command file printed it (see parseSelectedThread: the only source
 * the crashed process cannot write); gdb's current thread from the text (a
 * core's signalled thread; a pasted backtrace has nothing better); the
 * thread whose LWP is `hints.lwp` (or the banner's first `[New LWP]`, which
 * the kernel writes first); a thread showing the signal trampoline or
 * raise/abort machinery; thread 1; the first thread.
 */
export function findCrashThread(
  bt: Backtrace,
  hints: {
    lwp?: number | null;
    selected?: number | null;
    /** showsSignal of a thread's frames when they are not all at hand (a lean parse keeps a digest: lib/gdb/summarize.ts). */
    showsSignal?: (t: Thread) => boolean;
  } = {},
): number | null {
  const threads = bt.threads;
  if (threads.length === 0) return null;
  if (hints.selected != null && threads.some((t) => t.number === hints.selected)) return hints.selected;
  if (bt.currentThread !== null && threads.some((t) => t.number === bt.currentThread)) return bt.currentThread;
  const lwp = hints.lwp ?? bt.firstNewLwp;
  if (lwp != null) {
    const byLwp = threads.find((t) => t.lwp === lwp);
    if (byLwp) return byLwp.number;
  }
  const signalled = threads.find((t) => (hints.showsSignal ? hints.showsSignal(t) : showsSignal(t.frames)));
  if (signalled) return signalled.number;
  if (threads.some((t) => t.number === 1)) return 1;
  return threads[0]!.number;
}

/** How many of a thread's first frames showsSignal reads. */
export const SIGNAL_FRAMES = 12;

/** A thread's first SIGNAL_FRAMES frames show the signal trampoline or raise/abort: findCrashThread's last clue before thread 1. */
export function showsSignal(frames: Frame[]): boolean {
  return frames.slice(0, SIGNAL_FRAMES).some((f) => f.signal_handler || isRaiseFrame(f));
}

/** What the signal says about where the crash is. */
export interface CrashFrameOptions {
  /**
   * Another process sent the signal (siginfo's si_pid is not the crashed
   * process: `kill -QUIT`, a watchdog, a supervisor). The thread was
   * wherever it happened to be, usually blocked in libc: the crash frame is
   * then the program's frame that called the blocking call, below libc's
   * syscall wrappers (clock_nanosleep, nanosleep, sleep, read, poll, ...).
   */
  sentByAnotherProcess?: boolean;
}

/** The crash frame of a thread (see module doc); null for a thread without frames. */
export function crashFrameOf(thread: Thread, opts: CrashFrameOptions = {}): Frame | null {
  const i = crashFrameIndex(thread.frames, opts);
  return i === -1 ? null : thread.frames[i]!;
}

/**
 * Index of the crash frame in `frames`, -1 when there are none. Falls back to
 * the first frame that is not machinery, then to frame 0, so a thread made
 * only of machinery still has a crash frame.
 */
export function crashFrameIndex(frames: Frame[], opts: CrashFrameOptions = {}): number {
  if (frames.length === 0) return -1;
  if (opts.sentByAnotherProcess) {
    const below = blockingCallsAbove(frames);
    if (below > 0) return below;
  }
  const end = unwoundLength(frames);
  const handler = frames.slice(0, end).findIndex((f) => f.signal_handler);
  const start = handler === -1 || handler > 64 ? 0 : handler;
  let sawMachinery = handler !== -1 && handler <= 64;
  for (let i = start; i < end; i++) {
    const f = frames[i]!;
    if (f.signal_handler || isMachineryFrame(f)) {
      sawMachinery = true;
      continue;
    }
    // Unsymbolized libc/libstdc++ frames between abort() and the caller are
    // glibc's or the C++ runtime's own (malloc_printerr, __libc_message, ...).
    // Above the machinery too: without libc6-dbg, frame #0 of an abort is
    // `?? () from libc.so.6` (the static __pthread_kill_implementation),
    // followed by raise/abort.
    if (f.function === null && isRuntimeLibrary(f.library) && (sawMachinery || machineryFollows(frames, i))) continue;
    return i;
  }
  const any = frames.slice(0, end).findIndex((f) => !f.signal_handler && !isMachineryFrame(f));
  return any === -1 ? 0 : any;
}

/**
 * libc's blocking calls and the internal layers they go through, by their
 * name without glibc's `__GI_`/`__libc_`/`__` prefixes, `_nocancel` and
 * `64`/`_time64` suffixes: where a thread waits when a signal from outside
 * finds it.
 */
export const BLOCKING_CALLS: ReadonlySet<string> = new Set([
  "nanosleep",
  "clock_nanosleep",
  "sleep",
  "usleep",
  "pause",
  "sigsuspend",
  "sigwait",
  "sigwaitinfo",
  "sigtimedwait",
  "read",
  "readv",
  "pread",
  "write",
  "writev",
  "pwrite",
  "poll",
  "ppoll",
  "select",
  "pselect",
  "epoll_wait",
  "epoll_pwait",
  "epoll_pwait2",
  "accept",
  "accept4",
  "connect",
  "recv",
  "recvfrom",
  "recvmsg",
  "recvmmsg",
  "send",
  "sendto",
  "sendmsg",
  "wait",
  "waitpid",
  "wait4",
  "waitid",
  "open",
  "openat",
  "close",
  "fsync",
  "fdatasync",
  "flock",
  "fcntl",
  "lockf",
  "msgrcv",
  "semop",
  "semtimedop",
  "syscall",
  "futex_wait",
  "futex_abstimed_wait_common",
  "futex_abstimed_wait_cancelable",
  "lll_lock_wait",
  "lll_lock_wait_private",
  "pthread_cond_wait",
  "pthread_cond_timedwait",
  "pthread_cond_clockwait",
  "pthread_cond_wait_common",
  "pthread_join",
  "pthread_clockjoin_ex",
  "pthread_timedjoin_np",
  "pthread_mutex_lock",
  "pthread_rwlock_rdlock",
  "pthread_rwlock_wrlock",
  "sem_wait",
  "sem_timedwait",
  "sem_clockwait",
  "do_futex_wait",
  "thrd_sleep",
  "getchar",
  "fgets",
  "fread",
  "getline",
  "getdelim",
  "_IO_file_underflow",
  "_IO_new_file_underflow",
  "_IO_default_uflow",
  "__underflow",
  "__uflow",
]);

/** `__GI___libc_read_nocancel` → `read`, `__futex_abstimed_wait_common64` → `futex_abstimed_wait_common`. */
export function blockingKey(fn: string): string {
  return machineryKey(fn)
    .replace(/^(__)?libc_/, "")
    .replace(/^_+(?=[a-z])/, "")
    .replace(/^libc_/, "")
    .replace(/_nocancel$/, "")
    .replace(/(_time64|64)$/, "");
}

/** A frame of libc waiting in a blocking call: in a runtime library, or (with libc's DWARF, which names no module) by its name and glibc source. */
function isBlockingFrame(f: Frame): boolean {
  if (f.signal_handler) return false;
  if (isRuntimeLibrary(f.library)) return true;
  if (f.function === null || f.library !== null) return false;
  return BLOCKING_CALLS.has(blockingKey(f.function)) || BLOCKING_CALLS.has(machineryKey(f.function));
}

/** Index of the first frame below the libc frames at the top of the thread; 0 when none are or nothing is below them. */
function blockingCallsAbove(frames: Frame[]): number {
  let i = 0;
  while (i < frames.length && i < 16 && isBlockingFrame(frames[i]!)) i++;
  return i < frames.length && !frames[i]!.signal_handler ? i : 0;
}

/** Go's signal trampoline and handler entry: gdb cannot unwind Go's signal frame (it is not glibc's __restore_rt). */
export const GO_SIGNAL_FRAMES: ReadonlySet<string> = new Set([
  "runtime.sigtramp",
  "runtime.cgoSigtramp",
  "runtime.sigtrampgo",
  "runtime.sigreturn",
  "runtime.sigreturn__sigaction",
]);

/**
 * How many of `frames` gdb really unwound: below the last Go signal
 * trampoline frame gdb reads the signal stack as if it were frames
 * (`?? ()` at small integers), so those are cut, unless the Go probe put
 * the panicking goroutine there behind a `<signal handler called>` frame
 * (lib/gdb/probes/go.ts). The crash frame and the signature look no further.
 */
export function unwoundLength(frames: Frame[]): number {
  let last = -1;
  frames.forEach((f, i) => {
    if (f.function !== null && GO_SIGNAL_FRAMES.has(machineryKey(f.function))) last = i;
  });
  if (last === -1 || frames[last + 1]?.signal_handler) return frames.length;
  return last + 1;
}

/**
 * True when, below frame `i`, only unsymbolized runtime-library frames stand
 * between it and a machinery frame (looking a few frames ahead).
 */
function machineryFollows(frames: Frame[], i: number): boolean {
  for (let j = i + 1; j < Math.min(frames.length, i + 8); j++) {
    const f = frames[j]!;
    if (f.signal_handler || isMachineryFrame(f)) return true;
    if (!(f.function === null && isRuntimeLibrary(f.library))) return false;
  }
  return false;
}

/** glibc/musl/BSD functions that deliver a signal to the process itself. */
const RAISE = new Set([
  "raise",
  "abort",
  "gsignal",
  "__pthread_kill_implementation",
  "__pthread_kill_internal",
  "__pthread_kill",
  "pthread_kill",
  "thr_kill",
  "thrkill",
  "__thr_kill",
  "_thr_kill",
  "__sys_thr_kill",
  "__restore_sigs",
  "__libc_raise",
  "__libc_abort",
  "tgkill",
  "__kill",
  "kill",
  // Go: GOTRACEBACK=crash re-raises a fatal panic as SIGABRT from these.
  "runtime.raise",
  "runtime.raiseproc",
  "runtime.tgkill",
  "runtime.dieFromSignal",
  "runtime.crash",
  "runtime.abort",
]);

const MACHINERY = new Set([
  ...RAISE,
  // assert and glibc's fatal error reporting
  "__assert_fail",
  "__assert_fail_base",
  "__assert_perror_fail",
  "__assert",
  "__assert2",
  "__assert_rtn",
  "__libc_message",
  "__libc_message_impl",
  "__libc_fatal",
  "malloc_printerr",
  "__malloc_assert",
  "__fortify_fail",
  "__fortify_fail_abort",
  "__chk_fail",
  "__stack_chk_fail",
  "__stack_chk_fail_local",
  "__glibc_assert_fail",
  // C++ runtime
  "std::terminate",
  "std::__terminate",
  "std::unexpected",
  "__gnu_cxx::__verbose_terminate_handler",
  "__cxa_throw",
  "__cxa_rethrow",
  "__cxa_call_terminate",
  "__cxa_call_unexpected",
  "__cxa_pure_virtual",
  "__cxa_deleted_virtual",
  "__cxa_bad_cast",
  "__cxa_bad_typeid",
  "__cxa_throw_bad_array_new_length",
  "__clang_call_terminate",
  "std::__glibcxx_assert_fail",
  "std::__replacement_assert",
  "std::rethrow_exception",
  "__gxx_personality_v0",
  "__cxa_begin_catch",
  "__cxa_end_catch",
  // Rust runtime
  "rust_panic",
  "rust_begin_unwind",
  "__rust_start_panic",
  "__rust_panic_cleanup",
  "__rust_alloc_error_handler",
  "__rg_oom",
  "__rdl_oom",
  "__rust_foreign_exception",
  "panic_abort::__rust_start_panic::abort",
  "core::result::unwrap_failed",
  "core::option::unwrap_failed",
  "core::option::expect_failed",
  "core::option::Option<T>::unwrap",
  "core::option::Option<T>::expect",
  "core::result::Result<T,E>::unwrap",
  "core::result::Result<T,E>::expect",
  "core::result::Result<T, E>::unwrap",
  "core::result::Result<T, E>::expect",
  "alloc::alloc::handle_alloc_error",
  "std::alloc::rust_oom",
  "std::alloc::default_alloc_error_hook",
  "std::process::abort",
  "core::intrinsics::abort",
  // Go runtime: a fault becomes runtime.sigpanic (injected as if the faulting
  // function had called it), then gopanic; an unrecovered panic ends in
  // fatalpanic on the system stack and, under GOTRACEBACK=crash, in its own
  // signal handler. runtime.panic* (panicmem, panicIndex, panicdivide,
  // panicdottypeE, ...) and runtime.goPanic* are prefixes below.
  "runtime.gopanic",
  "runtime.sigpanic",
  "runtime.fatalpanic",
  "runtime.fatalthrow",
  "runtime.fatal",
  "runtime.throw",
  "runtime.startpanic_m",
  "runtime.dopanic_m",
  "runtime.preprintpanics",
  "runtime.printpanics",
  "runtime.sighandler",
  "runtime.sigtrampgo",
  "runtime.sigtramp",
  "runtime.cgoSigtramp",
  "runtime.sigfwdgo",
  "runtime.raisebadsignal",
  "runtime.badsignal",
  "runtime.systemstack",
  "runtime.systemstack_switch",
  "runtime.mcall",
  "runtime.morestack",
  "runtime.newstack",
  "runtime.abort",
]);

const MACHINERY_PREFIXES = [
  "_Unwind_",
  "__cxxabiv1::",
  "__gnu_cxx::__verbose_terminate",
  "std::__throw_",
  "std::__cxx11::__throw",
  "core::panicking::",
  "std::panicking::",
  "core::panic::",
  "std::panic::",
  "std::sys_common::backtrace::__rust_end_short_backtrace",
  "std::sys::backtrace::__rust_end_short_backtrace",
  "std::rt::lang_start_internal::{{closure}}::abort",
  "panic_abort::",
  "__rustc::",
  "std::rt::__rust_",
  "runtime.panic",
  "runtime.goPanic",
  "runtime.sigreturn",
  "runtime.fatalpanic.",
  "runtime.fatalthrow.",
];

/**
 * A function name reduced for matching: glibc's internal `__GI_` alias
 * prefix, the `@@GLIBC_x` version, a demangled parameter list, and a Rust
 * symbol hash do not change which function it is.
 */
export function machineryKey(fn: string): string {
  let s = fn;
  if (s.startsWith("__GI_")) s = s.slice(5);
  const at = s.indexOf("@");
  if (at > 0) s = s.slice(0, at);
  s = s.replace(/::h[0-9a-f]{16}$/, "");
  // Go's ABI wrappers ("runtime.systemstack_switch.abi0") are the same function.
  s = s.replace(/\.abi(0|internal)$/, "");
  // "std::terminate()" (no debug info) is "std::terminate".
  return stripParameters(s);
}

/** True for signal, abort, assert, C++ terminate/throw/unwind and Rust panic machinery. */
export function isMachineryFrame(f: Frame): boolean {
  if (f.signal_handler) return true;
  if (f.function === null) return false;
  const key = machineryKey(f.function);
  if (MACHINERY.has(key)) return true;
  // "__GI___assert_fail" -> "__assert_fail" above; "__GI___libc_abort" too.
  if (key.startsWith("__") && MACHINERY.has(key.slice(2))) return true;
  for (const p of MACHINERY_PREFIXES) if (key.startsWith(p)) return true;
  // Rust's abort paths moved between std::sys::unix, std::sys::pal::unix, ...
  if (key.startsWith("std::sys::") && /abort/i.test(key)) return true;
  // Result/Option unwrap instantiated with concrete types: Result<u16, ParseIntError>::unwrap<u16, ...>.
  if ((key.startsWith("core::result::Result<") || key.startsWith("core::option::Option<")) && />::(unwrap|expect|unwrap_err|expect_err)(<|$)/.test(key)) return true;
  return false;
}

function isRaiseFrame(f: Frame): boolean {
  if (f.function === null) return false;
  const key = machineryKey(f.function);
  return RAISE.has(key) || (key.startsWith("__") && RAISE.has(key.slice(2)));
}

const RUNTIME_LIBRARY = /(^|\/)(libc|libc\.musl[^/]*|ld-musl[^/]*|libpthread|libstdc\+\+|libc\+\+abi|libc\+\+|libgcc_s|libunwind)([.-][^/]*)?\.so(\.[\w.]+)?$/;

function isRuntimeLibrary(lib: string | null): boolean {
  return lib !== null && RUNTIME_LIBRARY.test(lib);
}

/**
 * "void ns::f<int>(std::string const&) const" -> "ns::f<int>". Only a
 * trailing top-level parameter list is removed (never `operator()` itself),
 * and a leading return type only when a top-level space precedes the name.
 */
export function stripParameters(s: string): string {
  let t = s;
  for (const q of [" const", " volatile", " &&", " &", " noexcept"]) {
    if (t.endsWith(q) && t.endsWith(")" + q)) t = t.slice(0, -q.length);
  }
  if (t.endsWith(")")) {
    // Walk back to the matching "(".
    let depth = 0;
    let open = -1;
    for (let i = t.length - 1; i >= 0; i--) {
      const c = t.charCodeAt(i);
      if (c === 41) depth++;
      else if (c === 40) {
        depth--;
        if (depth === 0) {
          open = i;
          break;
        }
      }
    }
    // "Foo::operator()" keeps its "()": there the parentheses are the name.
    if (open > 0 && !/operator\s*$/.test(t.slice(0, open))) t = t.slice(0, open);
  }
  // Leading return type: the last top-level space outside <>, () and [] that
  // is not part of "operator new" / "operator delete" / conversion operators.
  let depth = 0;
  let cut = -1;
  for (let i = 0; i < t.length; i++) {
    const c = t[i];
    if (c === "<" || c === "(" || c === "[") depth++;
    else if ((c === ">" || c === ")" || c === "]") && depth > 0) depth--;
    else if (c === " " && depth === 0) {
      if (/operator$/.test(t.slice(0, i))) break;
      cut = i;
    }
  }
  if (cut !== -1 && cut < t.length - 1 && !t.slice(cut + 1).startsWith("[")) t = t.slice(cut + 1);
  return t.trim();
}
