import { describe, expect, it } from "@jest/globals";
import { parseBacktrace } from "../../../lib/gdb/parseBacktrace.js";
import { decodeRustLegacy, normalizeFunction, signatureOf } from "../../../lib/gdb/signature.js";
import type { Thread } from "../../../lib/result.js";

function crashThread(text: string): Thread {
  const bt = parseBacktrace(text);
  return bt.threads.find((t) => t.number === (bt.currentThread ?? 1)) ?? bt.threads[0]!;
}

const runA = [
  "[Current thread is 1 (Thread 0x7f3c9a7fd740 (LWP 1235))]",
  "Thread 2 (Thread 0x7f3c9a7fc640 (LWP 1236)):",
  "#0  0x00007f3c9a891d61 in poll () from /lib/x86_64-linux-gnu/libc.so.6",
  "",
  "Thread 1 (Thread 0x7f3c9a7fd740 (LWP 1235)):",
  "#0  0x00007f3c9a8a2b1c in __pthread_kill_implementation () from /lib/x86_64-linux-gnu/libc.so.6",
  "#1  0x00007f3c9a84e472 in abort () from /lib/x86_64-linux-gnu/libc.so.6",
  "#2  0x000055d0c0a0113d in Cache::evict (this=0x55d0c1e2a2a0, key=42) at src/cache.cc:88",
  "#3  0x000055d0c0a01200 in Server::handle (this=0x55d0c1e29eb0, req=...) at src/server.cc:120",
  "#4  0x00007f3c9a8e2000 in ?? () from /lib/x86_64-linux-gnu/libevent-2.1.so.7",
].join("\n");
// Same crash: other pod, other ASLR base, other pids and thread numbering, different args.
const runB = [
  "[Current thread is 3 (Thread 0x7f11aa7fd740 (LWP 99))]",
  "Thread 3 (Thread 0x7f11aa7fd740 (LWP 99)):",
  "#0  0x00007f11aa8a2b1c in __pthread_kill_implementation () from /lib/x86_64-linux-gnu/libc.so.6",
  "#1  0x00007f11aa84e472 in abort () from /lib/x86_64-linux-gnu/libc.so.6",
  "#2  0x0000561200a0113d in Cache::evict (this=0x5612deadbeef, key=7) at src/cache.cc:88",
  "#3  0x0000561200a01200 in Server::handle (this=0x561200000001, req=...) at src/server.cc:120",
  "#4  0x00007f11aa8e2000 in ?? () from /usr/lib/x86_64-linux-gnu/libevent-2.1.so.7",
].join("\n");

describe("signatureOf: in-app frames and recursion", () => {
  const thread = (lines: string[]) => crashThread(["Thread 1 (LWP 7):", ...lines].join("\n"));
  it("a crash entirely in system code keeps its system frames", () => {
    const t = thread([
      "#0  0x00007f3c9a891d61 in __memmove_avx_unaligned_erms () from /lib/x86_64-linux-gnu/libc.so.6",
      "#1  0x00007f3c9a891e00 in event_base_loop () from /usr/lib/x86_64-linux-gnu/libevent-2.1.so.7",
    ]);
    expect(signatureOf(t)!.text).toBe("memmove | event_base_loop");
  });
  it("the crash frame counts even in a system library; system frames below the program's do not", () => {
    const t = thread([
      "#0  0x00007f3c9a891d61 in __strlen_avx2 () from /lib/x86_64-linux-gnu/libc.so.6",
      "#1  0x000055d0c0a0113d in parse_name (s=0x0) at src/parse.c:12",
      "#2  0x00007f3c9a8e2000 in ?? () from /lib/x86_64-linux-gnu/libc.so.6",
      "#3  0x000055d0c0a01200 in main () at src/main.c:5",
    ]);
    expect(signatureOf(t)!.text).toBe("strlen | parse_name | main");
  });
  it("a recursion counts once, wherever the guard page was hit", () => {
    // The same mutual recursion, its top cut at a different phase each time.
    const deep = (depth: number, phase: number) =>
      thread(
        Array.from({ length: depth }, (_, i) => {
          const fn = ["walk_left", "walk_right", "visit"][(i + phase) % 3]!;
          return `#${i}  0x000055d0c0a0113d in ${fn} (n=${i}) at src/tree.c:${10 + ((i + phase) % 3)}`;
        }),
      );
    const a = signatureOf(deep(9, 0))!;
    expect(a.text).toBe("visit | walk_left | walk_right");
    for (const [depth, phase] of [
      [12, 1],
      [40, 2],
      [7, 1],
    ] as const)
      expect(signatureOf(deep(depth, phase))!.hash).toBe(a.hash);
  });
});

describe("signatureOf", () => {
  it("is the same across ASLR, pids, thread numbers and arguments", () => {
    const a = signatureOf(crashThread(runA))!;
    const b = signatureOf(crashThread(runB))!;
    // libevent below the program's own frames is a system library: not part of the signature.
    expect(a.text).toBe("Cache::evict | Server::handle");
    expect(a.frames).toEqual(["Cache::evict", "Server::handle"]);
    expect(b.hash).toBe(a.hash);
    expect(a.hash).toMatch(/^[0-9a-f]{16}$/);
    expect(a.text).not.toMatch(/0x/);
  });
  it("differs when the function differs", () => {
    const a = signatureOf(crashThread(runA))!;
    const c = signatureOf(crashThread(runA.replace("Cache::evict", "Cache::insert")))!;
    expect(c.hash).not.toBe(a.hash);
  });
  it("is stable (known hash of a known text)", () => {
    const t = crashThread("#0  0x1 in f () at f.c:1\n#1  0x2 in main () at m.c:2\n");
    // First 16 hex of sha256("f | main") (sha256sum): pinned so a change of the hash is noticed.
    const s = signatureOf(t)!;
    expect(s.text).toBe("f | main");
    expect(s.hash).toBe("32b557d0adfa240e");
    expect(s.hash).toBe(signatureOf(crashThread("#0  0x9 in f () at f.c:7\n#1  0x8 in main () at m.c:9\n"))!.hash);
  });
  it("honours maxFrames and returns null without frames", () => {
    const t = crashThread(Array.from({ length: 12 }, (_, i) => `#${i}  0x${i + 1} in f${i} ()`).join("\n"));
    expect(signatureOf(t)!.frames).toHaveLength(5);
    expect(signatureOf(t, { maxFrames: 2 })!.text).toBe("f0 | f1");
    expect(signatureOf({ ...t, frames: [] })).toBeNull();
  });
  it("groups the same glibc crash across CPU variants and debug-info presence", () => {
    const withDbg = crashThread("#0  __memmove_avx_unaligned_erms () at ../sysdeps/x86_64/multiarch/memmove-vec-unaligned-erms.S:317\n#1  0x2 in copy (d=0x0) at c.c:3\n");
    const evex = crashThread("#0  0x1 in __memmove_evex_unaligned_erms () from /lib/x86_64-linux-gnu/libc.so.6\n#1  0x2 in copy (d=0x0) at c.c:3\n");
    expect(signatureOf(withDbg)!.text).toBe("memmove | copy");
    expect(signatureOf(evex)!.hash).toBe(signatureOf(withDbg)!.hash);
  });
});

describe("normalizeFunction", () => {
  it("strips glibc aliases, versions and CPU suffixes", () => {
    expect(normalizeFunction("__GI___libc_write")).toBe("write");
    expect(normalizeFunction("__GI___poll")).toBe("poll");
    expect(normalizeFunction("__libc_read")).toBe("read");
    expect(normalizeFunction("__libc_start_main")).toBe("__libc_start_main");
    expect(normalizeFunction("__strlen_avx2")).toBe("strlen");
    expect(normalizeFunction("__memcpy_sse2_unaligned")).toBe("memcpy");
    expect(normalizeFunction("__strcmp_avx2_rtm")).toBe("strcmp");
    expect(normalizeFunction("__memset_avx512_unaligned_erms")).toBe("memset");
    expect(normalizeFunction("__memcpy_power7")).toBe("memcpy");
    expect(normalizeFunction("pthread_cond_timedwait@@GLIBC_2.3.2")).toBe("pthread_cond_timedwait");
    expect(normalizeFunction("__cxa_throw")).toBe("__cxa_throw");
  });
  it("strips Rust hashes and decodes legacy mangling", () => {
    expect(normalizeFunction("core::panicking::panic_fmt::h1234abcd5678ef90")).toBe("core::panicking::panic_fmt");
    expect(normalizeFunction("_ZN4core9panicking9panic_fmt17h0123456789abcdefE")).toBe("core::panicking::panic_fmt");
    expect(normalizeFunction("_$LT$alloc..boxed..Box$LT$F$C$A$GT$$u20$as$u20$core..ops..function..FnOnce$LT$Args$GT$$GT$::call_once::h4e6d3b560a2a2b4a")).toBe(
      "<alloc::boxed::Box<F,A> as core::ops::function::FnOnce<Args>>::call_once",
    );
    expect(decodeRustLegacy("_ZN3foo3barE")).toBe("foo::bar");
    expect(normalizeFunction("std::rt::lang_start::{{closure}}::h0123456789abcdef")).toBe("std::rt::lang_start::{{closure}}");
  });
  it("drops parameter lists and return types, keeps templates and operator()", () => {
    expect(normalizeFunction("std::terminate()")).toBe("std::terminate");
    expect(normalizeFunction("foo(int, char const*)")).toBe("foo");
    expect(normalizeFunction("Foo::bar() const")).toBe("Foo::bar");
    expect(normalizeFunction("void std::this_thread::sleep_for<long, std::ratio<1l, 1l> >(std::chrono::duration<long, std::ratio<1l, 1l> > const&)")).toBe(
      "std::this_thread::sleep_for<long, std::ratio<1l, 1l> >",
    );
    expect(normalizeFunction("Foo::operator()")).toBe("Foo::operator()");
    expect(normalizeFunction("Foo::operator()(int)")).toBe("Foo::operator()");
    expect(normalizeFunction("operator delete(void*)")).toBe("operator delete");
    expect(normalizeFunction("(anonymous namespace)::Foo::bar")).toBe("(anonymous namespace)::Foo::bar");
    expect(normalizeFunction("std::vector<int, std::allocator<int> >::operator[]")).toBe("std::vector<int, std::allocator<int> >::operator[]");
  });
});

describe("signatureOf stops at thread start-up frames", () => {
  it("a worker thread's signature ends before start_thread/clone3", () => {
    const bt = parseBacktrace(
      [
        "#0  0x000055d0 in parse_message (m=0x0) at multithread.c:20",
        "#1  0x000055e0 in crasher (arg=0x0) at multithread.c:30",
        "#2  0x00007f10 in start_thread () from /lib/x86_64-linux-gnu/libc.so.6",
        "#3  0x00007f20 in clone3 () from /lib/x86_64-linux-gnu/libc.so.6",
      ].join("\n"),
    );
    expect(signatureOf(bt.threads[0]!)?.text).toBe("parse_message | crasher");
  });
});

describe("signatureOf with a module map: module+offset for unsymbolized frames", () => {
  const crashAt = (base: bigint, offsets: number[]) => {
    const bt = parseBacktrace(offsets.map((o, i) => `#${i}  0x${(base + BigInt(o)).toString(16)} in ?? ()`).join("\n"));
    const moduleAt = (a: string) => {
      const x = BigInt(a);
      return x >= base && x < base + 0x10000n ? { path: "/app/bin/server", start: "0x" + base.toString(16) } : null;
    };
    return signatureOf(bt.threads[0]!, { moduleAt })!;
  };
  it("is the same whatever the ASLR base, and names module+offset", () => {
    const a = crashAt(0x55d67e959000n, [0x1151, 0x11a0, 0x1203]);
    const b = crashAt(0x5601aa000000n, [0x1151, 0x11a0, 0x1203]);
    expect(a.text).toBe("server+0x1151 | server+0x11a0 | server+0x1203");
    expect(b.hash).toBe(a.hash);
  });
  it("differs for a different crash site in the same stripped module", () => {
    expect(crashAt(0x55d67e959000n, [0x2000, 0x11a0]).hash).not.toBe(crashAt(0x55d67e959000n, [0x1151, 0x11a0]).hash);
  });
});
