import { describe, expect, it } from "@jest/globals";
import { blockingKey, crashFrameOf, findCrashThread, unwoundLength } from "../../../lib/gdb/crash.js";
import { parseBacktrace } from "../../../lib/gdb/parseBacktrace.js";
import { qualityOf } from "../../../lib/gdb/quality.js";
import { summarize } from "../../../lib/gdb/summarize.js";
import type { Frame, Thread } from "../../../lib/result.js";

function thread(lines: string[], number = 1): Thread {
  const bt = parseBacktrace(lines.join("\n"));
  const t = bt.threads[0]!;
  return { ...t, number };
}

describe("findCrashThread", () => {
  const blocks = (a: string, b: string) => ["Thread 2 (Thread 0x7f02 (LWP 12)):", a, "", "Thread 1 (Thread 0x7f01 (LWP 11)):", b].join("\n");

  it("prefers gdb's current thread", () => {
    const bt = parseBacktrace(`[Current thread is 2 (Thread 0x7f02 (LWP 12))]\n${blocks("#0  0x1 in a ()", "#0  0x2 in b ()")}`);
    expect(findCrashThread(bt)).toBe(2);
  });
  it("then the LWP hint, then the banner's first [New LWP]", () => {
    const bt = parseBacktrace(`[New LWP 12]\n[New LWP 11]\n${blocks("#0  0x1 in a ()", "#0  0x2 in b ()")}`);
    expect(findCrashThread(bt)).toBe(2);
    expect(findCrashThread(bt, { lwp: 11 })).toBe(1);
  });
  it("then a thread with a signal trampoline or raise/abort", () => {
    const bt = parseBacktrace(blocks("#0  0x1 in __pthread_kill_implementation ()\n#1  0x2 in raise ()\n#2  0x3 in abort ()", "#0  0x2 in poll ()"));
    expect(findCrashThread(bt)).toBe(2);
    const sig = parseBacktrace(blocks("#0  0x1 in handler ()\n#1  <signal handler called>\n#2  0x3 in f ()", "#0  0x2 in poll ()"));
    expect(findCrashThread(sig)).toBe(2);
  });
  it("then thread 1, then the first thread; null without threads", () => {
    expect(findCrashThread(parseBacktrace(blocks("#0  0x1 in a ()", "#0  0x2 in b ()")))).toBe(1);
    expect(findCrashThread(parseBacktrace("Thread 5 (LWP 5):\n#0  0x1 in a ()\n\nThread 4 (LWP 4):\n#0  0x1 in b ()"))).toBe(5);
    expect(findCrashThread(parseBacktrace(""))).toBeNull();
  });
  it("ignores a current thread that is not in the text", () => {
    const bt = parseBacktrace(`[Current thread is 9 (LWP 99)]\n${blocks("#0  0x1 in a ()", "#0  0x2 in b ()")}`);
    expect(findCrashThread(bt)).toBe(1);
  });
});

describe("crashFrameOf", () => {
  const fn = (f: Frame | null) => f?.function ?? null;

  it("skips raise/abort/assert (glibc 2.35+ names)", () => {
    const t = thread([
      "#0  __pthread_kill_implementation (threadid=<optimized out>, signo=6, no_tid=0) at ./nptl/pthread_kill.c:44",
      "#1  0x1 in __pthread_kill_internal (signo=6, threadid=<optimized out>) at ./nptl/pthread_kill.c:78",
      "#2  0x2 in __GI_raise (sig=6) at ../sysdeps/posix/raise.c:26",
      "#3  0x3 in __GI_abort () at ./stdlib/abort.c:79",
      '#4  0x4 in __assert_fail_base (fmt=0x1 "%s", assertion=0x2 "x", file=0x3 "a.c", line=4, function=0x5 "f") at ./assert/assert.c:92',
      '#5  0x5 in __GI___assert_fail (assertion=0x2 "x", file=0x3 "a.c", line=4, function=0x5 "f") at ./assert/assert.c:101',
      "#6  0x6 in check (x=0) at a.c:4",
      "#7  0x7 in main () at a.c:9",
    ]);
    expect(fn(crashFrameOf(t))).toBe("check");
  });
  it("skips a user signal handler above <signal handler called>", () => {
    const t = thread(["#0  0x1 in raise ()", "#1  0x2 in reraise_fatal (signum=11) at h.cc:79", "#2  <signal handler called>", "#3  0x3 in buggy () at b.cc:3"]);
    expect(fn(crashFrameOf(t))).toBe("buggy");
  });
  it("skips C++ terminate/throw machinery without debug info", () => {
    const t = thread([
      "#0  0x1 in raise () from /lib64/libc.so.6",
      "#1  0x2 in abort () from /lib64/libc.so.6",
      "#2  0x3 in __gnu_cxx::__verbose_terminate_handler() () from /lib64/libstdc++.so.6",
      "#3  0x4 in ?? () from /lib64/libstdc++.so.6",
      "#4  0x5 in std::terminate() () from /lib64/libstdc++.so.6",
      "#5  0x6 in __cxa_throw () from /lib64/libstdc++.so.6",
      "#6  0x7 in std::__throw_out_of_range_fmt(char const*, ...) () from /lib64/libstdc++.so.6",
      "#7  0x8 in std::vector<int>::_M_range_check (this=0x1, __n=5) at stl_vector.h:1073",
      "#8  0x9 in lookup (v=...) at l.cc:8",
    ]);
    expect(fn(crashFrameOf(t))).toBe("std::vector<int>::_M_range_check");
  });
  it("skips Rust panic machinery, old and new", () => {
    const t = thread([
      "#0  0x1 in __pthread_kill_implementation () from /lib/libc.so.6",
      "#1  0x2 in raise () from /lib/libc.so.6",
      "#2  0x3 in abort () from /lib/libc.so.6",
      "#3  0x4 in std::sys::pal::unix::abort_internal () at library/std/src/sys/pal/unix/mod.rs:305",
      "#4  0x5 in std::process::abort () at library/std/src/process.rs:2533",
      "#5  0x6 in rust_panic () at library/std/src/panicking.rs:862",
      "#6  0x7 in std::panicking::rust_panic_with_hook::h1234567890abcdef () at library/std/src/panicking.rs:826",
      "#7  0x8 in std::panicking::begin_panic_handler::{{closure}} () at library/std/src/panicking.rs:667",
      "#8  0x9 in std::sys_common::backtrace::__rust_end_short_backtrace::h1234567890abcdef () at library/std/src/sys_common/backtrace.rs:170",
      "#9  0xa in rust_begin_unwind () at library/std/src/panicking.rs:665",
      "#10 0xb in core::panicking::panic_fmt::h1234567890abcdef () at library/core/src/panicking.rs:74",
      "#11 0xc in core::option::unwrap_failed () at library/core/src/option.rs:1984",
      "#12 0xd in core::option::Option<T>::unwrap (self=...) at option.rs:932",
      "#13 0xe in app::config::load (path=...) at src/config.rs:12",
    ]);
    expect(fn(crashFrameOf(t))).toBe("app::config::load");
  });
  it("skips unsymbolized libc frames after abort (glibc corruption checks)", () => {
    const t = thread([
      "#0  0x1 in raise () from /lib/x86_64-linux-gnu/libc.so.6",
      "#1  0x2 in abort () from /lib/x86_64-linux-gnu/libc.so.6",
      "#2  0x3 in ?? () from /lib/x86_64-linux-gnu/libc.so.6",
      '#3  0x4 in malloc_printerr (str=0x5 "free(): double free detected in tcache 2") at malloc.c:5347',
      "#4  0x5 in _int_free () from /lib/x86_64-linux-gnu/libc.so.6",
      "#5  0x6 in release (p=0x1) at r.c:3",
    ]);
    expect(fn(crashFrameOf(t))).toBe("_int_free");
  });
  it("returns the first frame for a plain fault, and null without frames", () => {
    expect(fn(crashFrameOf(thread(["#0  0x1 in f (p=0x0) at f.c:1", "#1  0x2 in main ()"])))).toBe("f");
    const unsym = crashFrameOf(thread(["#0  0x0000000000000000 in ?? ()", "#1  0x2 in main ()"]));
    expect(unsym?.index).toBe(0);
    expect(crashFrameOf({ number: 1, lwp: null, thread_id: null, name: null, crashed: true, frames: [], backtrace_stopped: null })).toBeNull();
  });
  it("falls back to frame 0 when every frame is machinery", () => {
    expect(crashFrameOf(thread(["#0  0x1 in raise ()", "#1  0x2 in abort ()"]))?.index).toBe(0);
  });
});

describe("qualityOf", () => {
  const full = thread(["#0  0x1 in f () at f.c:1", "#1  0x2 in g () at g.c:2"]);
  const nameOnly = thread(["#0  0x1 in f () from /lib/x.so", "#1  0x2 in g () from /lib/x.so"], 2);
  const none = thread(["#0  0x1 in ?? ()", "#1  0x2 in ?? ()"], 3);
  it("is 1 for fully symbolized, 0.5 for names only, 0 for ??", () => {
    expect(qualityOf([full], 1)).toBe(1);
    expect(qualityOf([nameOnly], 2)).toBe(0.5);
    expect(qualityOf([none], 3)).toBe(0);
    expect(qualityOf([], null)).toBe(0);
  });
  it("weighs the crash thread 80% and its top frame most", () => {
    expect(qualityOf([full, none], 1)).toBeCloseTo(0.8, 5);
    expect(qualityOf([full, none], 3)).toBeCloseTo(0.2, 5);
    const topBad = thread(["#0  0x1 in ?? ()", "#1  0x2 in g () at g.c:2"]);
    const topGood = thread(["#0  0x1 in f () at f.c:1", "#1  0x2 in ?? ()"]);
    expect(qualityOf([topGood], 1)).toBeGreaterThan(qualityOf([topBad], 1));
  });
  it("stays within [0, 1]", () => {
    for (const ts of [[full], [none], [full, nameOnly, none]]) {
      for (const c of [1, 2, 3, null]) {
        const q = qualityOf(ts, c);
        expect(q).toBeGreaterThanOrEqual(0);
        expect(q).toBeLessThanOrEqual(1);
      }
    }
  });
});

describe("summarize", () => {
  it("sets the crashed flag, crash frame, signal from siginfo and signature", () => {
    const bt = parseBacktrace(
      [
        "Core was generated by `./app -c x'.",
        "Program terminated with signal SIGSEGV, Segmentation fault.",
        "[Current thread is 2 (Thread 0x7f02 (LWP 12))]",
        "",
        "Thread 2 (Thread 0x7f02 (LWP 12)):",
        "#0  0x1 in store (p=0x0) at s.c:3",
        "#1  0x2 in worker () at w.c:9",
        "",
        "Thread 1 (Thread 0x7f01 (LWP 11)):",
        "#0  0x3 in poll () from /lib/libc.so.6",
      ].join("\n"),
    );
    const s = summarize(bt, { siginfoText: "$1 = {si_signo = 11, si_errno = 0, si_code = 1, _sigfault = {si_addr = 0x0}}" });
    expect(s.crash_thread).toBe(2);
    expect(s.threads.map((t) => [t.number, t.crashed])).toEqual([
      [2, true],
      [1, false],
    ]);
    expect(s.crash_frame?.function).toBe("store");
    expect(s.signal?.code).toBe("SEGV_MAPERR");
    expect(s.signal?.fault_address).toBe("0x0");
    expect(s.signature?.text).toBe("store | worker");
    expect(s.executable).toBe("./app");
    expect(s.command_line).toBe("./app -c x");
    expect(bt.threads[0]!.crashed).toBe(false);
  });
});

describe("crashFrameOf without libc debug info", () => {
  it("skips an unsymbolized libc frame #0 above raise/abort and the assert internals", () => {
    const t = thread([
      "#0  0x00007f1c in ?? () from /lib/x86_64-linux-gnu/libc.so.6",
      "#1  0x00007f2c in raise () from /lib/x86_64-linux-gnu/libc.so.6",
      "#2  0x00007f3c in abort () from /lib/x86_64-linux-gnu/libc.so.6",
      "#3  0x00007f4c in ?? () from /lib/x86_64-linux-gnu/libc.so.6",
      "#4  0x00007f5c in __assert_fail () from /lib/x86_64-linux-gnu/libc.so.6",
      "#5  0x000055d0 in withdraw (w=0x7ffd, amount=5) at abort-assert.c:17",
      "#6  0x000055e0 in main () at abort-assert.c:30",
    ]);
    expect(crashFrameOf(t)?.function).toBe("withdraw");
  });
  it("keeps an unsymbolized libc frame #0 when no machinery follows (a real crash in libc)", () => {
    const t = thread(["#0  0x00007f1c in ?? () from /lib/x86_64-linux-gnu/libc.so.6", "#1  0x000055d0 in copy_name (dst=0x0) at names.c:12"]);
    expect(crashFrameOf(t)?.library).toMatch(/libc\.so\.6$/);
  });
  it("does not treat a user crate named rust_panic as machinery", () => {
    const t = thread(["#0  0x000055d0 in rust_panic::parse_port (s=...) at src/main.rs:4", "#1  0x000055e0 in main () at src/main.rs:9"]);
    expect(crashFrameOf(t)?.function).toBe("rust_panic::parse_port");
  });
});

describe("a signal sent by another process: the crash frame is the program's frame below libc's blocking call", () => {
  const program = ["#3  0x0000555555555189 in wait_for_work () at fixtures/crashes/external-kill.c:24", "#4  0x00005555555551b8 in main () at fixtures/crashes/external-kill.c:36"];
  const cases: Array<[string, string[], boolean, string]> = [
    [
      "libc with DWARF (no module named)",
      [
        "#0  __GI___clock_nanosleep (clock_id=0, flags=0, req=0x7ffc, rem=0x7ffc) at ../sysdeps/unix/sysv/linux/clock_nanosleep.c:71",
        "#1  0x00007f0000000001 in __GI___nanosleep (req=<optimized out>, rem=<optimized out>) at ../sysdeps/unix/sysv/linux/nanosleep.c:25",
        "#2  0x00007f0000000002 in __sleep (seconds=0) at ../sysdeps/posix/sleep.c:55",
        ...program,
      ],
      true,
      "wait_for_work",
    ],
    [
      "libc without debug info",
      [
        "#0  0x00007f0000000000 in clock_nanosleep () from /lib/x86_64-linux-gnu/libc.so.6",
        "#1  0x00007f0000000001 in nanosleep () from /lib/x86_64-linux-gnu/libc.so.6",
        "#2  0x00007f0000000002 in sleep () from /lib/x86_64-linux-gnu/libc.so.6",
        ...program,
      ],
      true,
      "wait_for_work",
    ],
    ["unsymbolized libc", ["#0  0x00007f0000000000 in ?? () from /lib/x86_64-linux-gnu/libc.so.6", ...program], true, "wait_for_work"],
    [
      "read(2), pthread_cond_wait",
      [
        "#0  0x1 in __GI___libc_read (fd=0, buf=0x0, nbytes=1) at ../sysdeps/unix/sysv/linux/read.c:26",
        "#1  0x2 in __futex_abstimed_wait_common64 (private=0) at ./nptl/futex-internal.c:57",
        "#2  0x3 in ___pthread_cond_wait (cond=0x1, mutex=0x2) at ./nptl/pthread_cond_wait.c:618",
        ...program,
      ],
      true,
      "wait_for_work",
    ],
    // The program was running its own code: that is where it was.
    ["busy in the program", ["#0  spin (n=3) at a.c:4", ...program], true, "spin"],
    // Sent by the process itself or the kernel: libc's frame stays the crash frame (a fault in memcpy is one).
    ["self-sent, same stack", ["#0  0x00007f0000000000 in __GI___nanosleep () from /lib/x86_64-linux-gnu/libc.so.6", ...program], false, "__GI___nanosleep"],
    // Nothing below the libc frames: the usual rules.
    ["only libc", ["#0  0x00007f0000000000 in pause () from /lib/x86_64-linux-gnu/libc.so.6"], true, "pause"],
  ];
  it.each(cases)("%s", (_what, lines, external, fn) => {
    expect(crashFrameOf(thread(lines), { sentByAnotherProcess: external })?.function).toBe(fn);
  });
  it("blockingKey strips glibc's alias prefixes and suffixes", () => {
    expect(["__GI___clock_nanosleep", "__libc_read", "__GI___libc_read_nocancel", "__futex_abstimed_wait_common64", "___pthread_cond_wait", "__sleep"].map(blockingKey)).toEqual([
      "clock_nanosleep",
      "read",
      "read",
      "futex_abstimed_wait_common",
      "pthread_cond_wait",
      "sleep",
    ]);
  });
});

describe("Go runtime machinery", () => {
  const GO = "/usr/lib/go-1.19/src/runtime";
  // The panicking goroutine's stack as gdb prints it when it can unwind it
  // (a live process stopped in the panic, or a Go crash on a single stack):
  // an unrecovered nil dereference re-raised under GOTRACEBACK=crash.
  const goPanic = [
    `#0  runtime.raise () at ${GO}/sys_linux_amd64.s:159`,
    `#1  0x0000000000449e45 in runtime.dieFromSignal (sig=6) at ${GO}/signal_unix.go:870`,
    `#2  0x000000000044a2c5 in runtime.crash () at ${GO}/signal_unix.go:962`,
    `#3  0x0000000000435330 in runtime.fatalpanic.func2 () at ${GO}/panic.go:1163`,
    `#4  0x000000000045f089 in runtime.systemstack.abi0 () at ${GO}/asm_amd64.s:492`,
    `#5  0x000000000045f020 in runtime.systemstack_switch () at ${GO}/asm_amd64.s:459`,
    `#6  0x0000000000434fda in runtime.gopanic (e=...) at ${GO}/panic.go:987`,
    `#7  0x00000000004339e5 in runtime.panicmem () at ${GO}/panic.go:260`,
    `#8  0x0000000000449da5 in runtime.sigpanic () at ${GO}/signal_unix.go:835`,
    "#9  0x000000000046a285 in main.parseHeader (h=0x0, limit=4096, ~r0=<optimized out>) at /src/server/go-nil-deref.go:29",
    "#10 0x000000000046a33a in main.(*Server).handle (s=0xc000062f18, r=0xc000062f30, ~r0=<optimized out>) at /src/server/go-nil-deref.go:38",
    "#11 0x000000000046a429 in main.(*Server).serve (s=0xc000062f18, reqs=..., ~r0=<optimized out>) at /src/server/go-nil-deref.go:45",
    "#12 0x000000000046a6e8 in main.main () at /src/server/go-nil-deref.go:56",
    `#13 0x0000000000437bb8 in runtime.main () at ${GO}/proc.go:250`,
    `#14 0x0000000000461101 in runtime.goexit () at ${GO}/asm_amd64.s:1594`,
  ];

  it("skips raise, crash, fatalpanic, systemstack, gopanic, panicmem and sigpanic down to the faulting function", () => {
    const f = crashFrameOf(thread(goPanic));
    expect(f).toMatchObject({ function: "main.parseHeader", file: "/src/server/go-nil-deref.go", line: 29 });
  });
  it("the signature starts at the user's function and stops at runtime.main", () => {
    expect(summarize(parseBacktrace(goPanic.join("\n"))).signature?.text).toBe("main.parseHeader | main.(*Server).handle | main.(*Server).serve | main.main");
  });
  it("never takes gdb's junk below Go's signal trampoline: a symbolized frame above it, else frame #0", () => {
    const tramp = [
      `#0  runtime.raise () at ${GO}/sys_linux_amd64.s:159`,
      `#1  0x0000000000448e07 in runtime.sigtrampgo (sig=0) at ${GO}/signal_unix.go:432`,
      `#2  0x0000000000462ce6 in runtime.sigtramp () at ${GO}/sys_linux_amd64.s:359`,
    ];
    const cases: Array<[string, string[], number, string | null]> = [
      ["?? below sigtramp", [...tramp, "#3  0x0000000000462de0 in ?? ()", "#4  0x0000000000000007 in ?? ()"], 0, "runtime.raise"],
      ["?? below sigreturn", [...tramp, "#3  0x0000000000462de0 in runtime.sigreturn__sigaction () at x.s:1", "#4  0x0000000000000007 in ?? ()"], 0, "runtime.raise"],
      // A named non-runtime frame above the trampoline (a cgo signal handler's caller) is still taken.
      ["user frame above", [`#0  0x1 in main.onSignal () at /a.go:3`, ...tramp.slice(1), "#3  0x7 in ?? ()"], 0, "main.onSignal"],
    ];
    for (const [what, lines, index, fn] of cases) {
      const t = thread(lines);
      expect([what, unwoundLength(t.frames) <= 4, crashFrameOf(t)?.index, crashFrameOf(t)?.function]).toEqual([what, true, index, fn]);
      expect([what, summarize(parseBacktrace(lines.join("\n"))).signature?.text.includes("??")]).toEqual([what, false]);
    }
    // The probe's goroutine behind a `<signal handler called>` frame is kept.
    const spliced = thread([...tramp, "#3  <signal handler called>", "#4  0x2 in main.f () at /a.go:9"]);
    expect(unwoundLength(spliced.frames)).toBe(5);
    expect(crashFrameOf(spliced)?.function).toBe("main.f");
  });
  it("skips index, slice and divide panics (runtime.goPanic*, runtime.panic*)", () => {
    const index = thread([
      `#0  0x1 in runtime.gopanic (e=...) at ${GO}/panic.go:884`,
      `#1  0x2 in runtime.goPanicIndex (x=5, y=3) at ${GO}/panic.go:113`,
      "#2  0x3 in main.pick (xs=..., i=5) at /src/pick.go:7",
    ]);
    expect(crashFrameOf(index)?.function).toBe("main.pick");
    const div = thread([`#0  0x1 in runtime.panicdivide () at ${GO}/panic.go:250`, "#1  0x2 in main.avg (n=0) at /src/avg.go:4"]);
    expect(crashFrameOf(div)?.function).toBe("main.avg");
  });
  it("finds the Go thread that raised when gdb names no current thread", () => {
    const bt = parseBacktrace(
      [
        "Thread 2 (LWP 15):",
        `#0  runtime.futex () at ${GO}/sys_linux_amd64.s:560`,
        "",
        "Thread 1 (LWP 14):",
        `#0  runtime.futex () at ${GO}/sys_linux_amd64.s:560`,
        "",
        "Thread 3 (LWP 16):",
        `#0  runtime.raise () at ${GO}/sys_linux_amd64.s:159`,
        `#1  0x1 in runtime.dieFromSignal (sig=6) at ${GO}/signal_unix.go:870`,
      ].join("\n"),
    );
    expect(findCrashThread(bt)).toBe(3);
  });
  it("a user package's panic-named function is not machinery", () => {
    const t = thread(["#0  0x1 in main.panicOnBadInput (s=...) at /src/main.go:12", "#1  0x2 in main.main () at /src/main.go:20"]);
    expect(crashFrameOf(t)?.function).toBe("main.panicOnBadInput");
  });
});
