import { describe, expect, it } from "@jest/globals";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { backtraceLineParser, parseBacktrace, parseFrameLine, MAX_LOCALS_PER_FRAME } from "../../../lib/gdb/parseBacktrace.js";

function frame(line: string) {
  const p = parseFrameLine(line);
  if (!p) throw new Error(`not a frame: ${line}`);
  return p.frame;
}

describe("parseFrameLine", () => {
  it("reads address, function, empty args and library", () => {
    expect(frame("#0  0x00007f3c9a7fc640 in raise () from /lib/x86_64-linux-gnu/libc.so.6")).toEqual({
      index: 0,
      address: "0x00007f3c9a7fc640",
      function: "raise",
      args: "",
      file: null,
      line: null,
      library: "/lib/x86_64-linux-gnu/libc.so.6",
      inline: false,
      signal_handler: false,
    });
  });

  it("reads a frame without address (frame #0 at a line start) with args, file and line", () => {
    const f = frame("#0  foo (a=1, b=0x0) at src/foo.c:42");
    expect(f).toMatchObject({ index: 0, address: null, function: "foo", args: "a=1, b=0x0", file: "src/foo.c", line: 42, inline: false });
  });

  it("marks frames without address after #0 as inlined", () => {
    expect(frame("#4  virNetClientIOHandleOutput (client=0x1) at rpc/virnetclient.c:747").inline).toBe(true);
  });

  it("reads ?? and empty function names as null", () => {
    expect(frame("#2  0x0000000000401136 in ?? ()").function).toBeNull();
    expect(frame("#8  0x00007ffff56d6386 in ??? () at /usr/lib/libQt6Core.so.6").function).toBeNull();
    const empty = frame("#5  0x0000000000000000 in  ()");
    expect(empty.function).toBeNull();
    expect(empty.address).toBe("0x0000000000000000");
  });

  it("reads <signal handler called>", () => {
    expect(frame("#3  <signal handler called>")).toMatchObject({ index: 3, signal_handler: true, function: null });
  });

  it("keeps C++ templates and takes the argument list after them", () => {
    const f = frame("#4  0x000055555555a1b2 in std::vector<int, std::allocator<int> >::operator[] (this=0x7ffd1, __n=3) at /usr/include/c++/12/bits/stl_vector.h:1123");
    expect(f.function).toBe("std::vector<int, std::allocator<int> >::operator[]");
    expect(f.args).toBe("this=0x7ffd1, __n=3");
    expect(f.file).toBe("/usr/include/c++/12/bits/stl_vector.h");
    expect(f.line).toBe(1123);
  });

  it("handles operator(), operator<< and (anonymous namespace)", () => {
    expect(frame("#1  0x1 in Foo::operator() (this=0x2) at a.cc:3").function).toBe("Foo::operator()");
    expect(frame('#1  0x1 in std::operator<< <std::char_traits<char> > (__out=..., __s=0x2 "x") at ostream:611').function).toBe("std::operator<< <std::char_traits<char> >");
    const anon = frame("#2  0x1 in (anonymous namespace)::Foo::bar (x=1) at foo.cc:9");
    expect(anon.function).toBe("(anonymous namespace)::Foo::bar");
    expect(anon.args).toBe("x=1");
  });

  it("handles demangled names that carry their own parameter list", () => {
    const f = frame("#2  0x000000351485ed23 in std::terminate() () from /lib64/libstdc++.so.6");
    expect(f.function).toBe("std::terminate()");
    expect(f.args).toBe("");
    expect(f.library).toBe("/lib64/libstdc++.so.6");
    const g = frame("#2  0x000055c043e008ce in void std::this_thread::sleep_for<long, std::ratio<1l, 1l> >(std::chrono::duration<long, std::ratio<1l, 1l> > const&) ()");
    expect(g.function).toBe("void std::this_thread::sleep_for<long, std::ratio<1l, 1l> >(std::chrono::duration<long, std::ratio<1l, 1l> > const&)");
  });

  it("handles Rust names", () => {
    expect(frame("#1  0x1 in core::panicking::panic_fmt::h1234abcd5678ef90 () at library/core/src/panicking.rs:72").function).toBe("core::panicking::panic_fmt::h1234abcd5678ef90");
    expect(frame("#7  0x1 in std::rt::lang_start::{{closure}} (main=0x2) at rt.rs:166").function).toBe("std::rt::lang_start::{{closure}}");
    expect(frame("#8  0x1 in panic::main::{closure#0} () at panic.rs:7").function).toBe("panic::main::{closure#0}");
    const drop = frame("#3  0x1 in <alloc::vec::Vec<T> as core::ops::Drop>::drop (self=0x7f) at vec.rs:2100");
    expect(drop.function).toBe("<alloc::vec::Vec<T> as core::ops::Drop>::drop");
    expect(drop.args).toBe("self=0x7f");
  });

  it("is not fooled by parentheses and quotes inside arguments", () => {
    const f = frame("#1  0x1 in greet (name=0x55 \"hello (world)\", c=40 '(', q=34 '\"', x={a = {b = 1}}) at g.c:7");
    expect(f.function).toBe("greet");
    expect(f.args).toBe("name=0x55 \"hello (world)\", c=40 '(', q=34 '\"', x={a = {b = 1}}");
    expect(f.file).toBe("g.c");
    const err = frame("#2  0x1 in f (p=<error reading variable: Cannot access memory at address 0x10>, q=<optimized out>, ...) at f.c:1");
    expect(err.function).toBe("f");
    expect(err.line).toBe(1);
  });

  it("strips the ppc64 function-descriptor dot", () => {
    expect(frame("#0  0x000000803a327a54 in .__libc_start_main () from /lib64/libc.so.6").function).toBe("__libc_start_main");
  });

  it("reads a library in the `at` slot as a library, a source path as a file", () => {
    const lib = frame("#7  0x00007ffff56bd114 in qTerminate() () at /home/a/usr/lib/libQt6Core.so.6");
    expect(lib.library).toBe("/home/a/usr/lib/libQt6Core.so.6");
    expect(lib.file).toBeNull();
    const src = frame("#2  0x1 in __GI_raise (sig=6) at ../sysdeps/unix/sysv/linux/raise.c:44");
    expect(src.file).toBe("../sysdeps/unix/sysv/linux/raise.c");
    expect(src.line).toBe(44);
  });

  it("reports an argument list still open (gdb wrapped the line)", () => {
    const p = parseFrameLine("#11 0x000055b1f118996f in DCacheInstance::handle (");
    expect(p?.open).toBe(true);
  });

  it("rejects lines that are not frames", () => {
    expect(parseFrameLine("#include <stdio.h>")).toBeNull();
    expect(parseFrameLine("#")).toBeNull();
  });
});

describe("parseBacktrace", () => {
  it("a thread gdb's frame limit cut says frames_truncated", () => {
    const bt = parseBacktrace(
      [
        "Thread 2 (LWP 8):",
        "#0  0x1 in idle () at a.c:1",
        "",
        "Thread 1 (LWP 7):",
        "#0  0x1 in descend (d=9) at r.c:4",
        "#1  0x2 in descend (d=8) at r.c:4",
        "(More stack frames follow...)",
        "",
      ].join("\n"),
    );
    expect(bt.threads.find((t) => t.number === 1)?.frames_truncated).toBe(true);
    expect(bt.threads.find((t) => t.number === 2)?.frames_truncated).toBeUndefined();
  });

  const multi = [
    "[New LWP 1235]",
    "[New LWP 1234]",
    "Core was generated by `/usr/bin/foo --bar baz'.",
    "Program terminated with signal SIGSEGV, Segmentation fault.",
    "#0  0x000055555555513d in crash (p=0x0) at foo.c:5",
    "5\t  *p = 1;",
    "[Current thread is 1 (Thread 0x7f3c9a7fd740 (LWP 1235))]",
    "",
    'Thread 2 (Thread 0x7f3c9a7fc640 (LWP 1234) "worker-name"):',
    "#0  0x00007f3c9a891d61 in __futex_abstimed_wait_common () from /lib/x86_64-linux-gnu/libc.so.6",
    "#1  0x00007f3c9a8947b8 in pthread_cond_wait () from /lib/x86_64-linux-gnu/libc.so.6",
    "",
    "Thread 1 (Thread 0x7f3c9a7fd740 (LWP 1235)):",
    "#0  0x000055555555513d in crash (p=0x0) at foo.c:5",
    "#1  0x0000555555555160 in main () at foo.c:10",
    "",
  ].join("\n");

  it("reads the banner, headers, names and LWPs", () => {
    const bt = parseBacktrace(multi);
    expect(bt.executable).toBe("/usr/bin/foo");
    expect(bt.commandLine).toBe("/usr/bin/foo --bar baz");
    expect(bt.terminatedBy).toEqual({ name: "SIGSEGV", description: "Segmentation fault" });
    expect(bt.currentThread).toBe(1);
    expect(bt.firstNewLwp).toBe(1235);
    expect(bt.threads.map((t) => [t.number, t.lwp, t.thread_id, t.name, t.frames.length])).toEqual([
      [2, 1234, "0x7f3c9a7fc640", "worker-name", 2],
      [1, 1235, "0x7f3c9a7fd740", null, 2],
    ]);
    expect(bt.threads.every((t) => t.crashed === false)).toBe(true);
  });

  it("reads LWP-only, old numeric and process headers", () => {
    const bt = parseBacktrace(
      ["Thread 2 (LWP 1235):", "#0  0x1 in a ()", "", "Thread 1 (Thread 1234):", "#0  0x2 in b ()", "", "Thread 7 (process 42):", "#0  0x3 in c ()"].join("\n"),
    );
    expect(bt.threads.map((t) => [t.number, t.lwp, t.thread_id])).toEqual([
      [2, 1235, null],
      [1, 1234, null],
      [7, 42, null],
    ]);
  });

  it("treats text with no thread header as one thread", () => {
    const bt = parseBacktrace("#0  0x1 in a () at a.c:1\n#1  0x2 in b () at b.c:2\n#2  0x3 in main ()\n");
    expect(bt.threads).toHaveLength(1);
    expect(bt.threads[0]!.number).toBe(1);
    expect(bt.threads[0]!.frames.map((f) => f.function)).toEqual(["a", "b", "main"]);
  });

  it("keeps the longest loose sequence when the banner's #0 precedes a bt", () => {
    const bt = parseBacktrace(["Program terminated with signal 11, Segmentation fault.", "#0  0x1 in a ()", "(gdb) bt", "#0  0x1 in a ()", "#1  0x2 in b ()"].join("\n"));
    expect(bt.terminatedBy).toEqual({ name: "SIGSEGV", description: "Segmentation fault" });
    expect(bt.threads).toHaveLength(1);
    expect(bt.threads[0]!.frames).toHaveLength(2);
  });

  it("takes the current thread number for a headerless bt (received signal / switching)", () => {
    const bt = parseBacktrace(['Thread 3 "w" received signal SIGBUS, Bus error.', "#0  0x1 in a ()", "#1  0x2 in b ()"].join("\n"));
    expect(bt.currentThread).toBe(3);
    expect(bt.threads[0]!.number).toBe(3);
    expect(bt.terminatedBy?.name).toBe("SIGBUS");
    const sw = parseBacktrace("[Switching to thread 2 (Thread 0x7f (LWP 9))]\n#0  0x1 in a ()\n");
    expect(sw.currentThread).toBe(2);
  });

  it("reads bt full locals, No locals. and No symbol table info", () => {
    const bt = parseBacktrace(
      [
        "Thread 1 (Thread 0x7f (LWP 5)):",
        "#0  0x1 in f (x=1) at f.c:3",
        "        a = 1",
        "        s = {b = {c = 2}}",
        "#1  0x2 in g () at g.c:4",
        "No locals.",
        "#2  0x3 in ?? () from /lib/libz.so.1",
        "No symbol table info available.",
      ].join("\n"),
    );
    const [f0, f1, f2] = bt.threads[0]!.frames;
    expect(f0!.locals).toEqual(["a = 1", "s = {b = {c = 2}}"]);
    expect(f1!.locals).toEqual([]);
    expect(f2!.locals).toEqual([]);
  });

  it("bounds locals per frame", () => {
    const lines = ["#0  0x1 in f () at f.c:1"];
    for (let i = 0; i < 200; i++) lines.push(`        v${i} = ${i}`);
    const bt = parseBacktrace(lines.join("\n"));
    expect(bt.threads[0]!.frames[0]!.locals).toHaveLength(MAX_LOCALS_PER_FRAME);
  });

  it("joins frames gdb wrapped: open argument list, and `at` on its own line", () => {
    const bt = parseBacktrace(
      [
        "#0  0x1 in syscall_handler_pre (syscall_no=93, args=0x7fb5280920, ",
        "    next_inst=0x7fb5500e3c, thread_data=0x7fb31ad000) at syscalls.c:242",
        "#1  set_next (n=<synthetic pointer>, next=<synthetic pointer>) ",
        "    at /build/list_node.hpp:66",
        "#2  0x2 in DCacheInstance::handle (",
        "    this=0x7f7c76800000, f=0x7f7c924f0280)",
        "    at /src/dcache_init.cc:327",
        "        local = 5",
        "#3  0x3 in RCache::_cmd_clear (this=0x1)\\",
        "    at /src/rcache.cc:2117",
      ].join("\n"),
    );
    const fr = bt.threads[0]!.frames;
    expect(fr).toHaveLength(4);
    expect(fr[0]).toMatchObject({ function: "syscall_handler_pre", file: "syscalls.c", line: 242 });
    expect(fr[0]!.args).toBe("syscall_no=93, args=0x7fb5280920, next_inst=0x7fb5500e3c, thread_data=0x7fb31ad000");
    expect(fr[1]).toMatchObject({ function: "set_next", file: "/build/list_node.hpp", line: 66 });
    expect(fr[2]).toMatchObject({ function: "DCacheInstance::handle", file: "/src/dcache_init.cc", line: 327, locals: ["local = 5"] });
    expect(fr[3]).toMatchObject({ function: "RCache::_cmd_clear", file: "/src/rcache.cc", line: 2117 });
  });

  it("does not join a local named like a location", () => {
    const bt = parseBacktrace(["#0  0x1 in f () at f.c:1", "        at = 5", "        from = 0x0"].join("\n"));
    expect(bt.threads[0]!.frames[0]!.locals).toEqual(["at = 5", "from = 0x0"]);
  });

  it("skips the pager prompt, warnings and chatter; records Backtrace stopped", () => {
    const bt = parseBacktrace(
      [
        "warning: Unexpected size of section `.reg-xstate/1' in core file.",
        "warning: Could not load shared library symbols for /opt/x.so.",
        "Thread 1 (LWP 7):",
        "#0  0x1 in a ()",
        "---Type <return> to continue, or q <return> to quit---",
        "#1  0x2 in b ()",
        "(More stack frames follow...)",
        "Backtrace stopped: previous frame inner to this frame (corrupt stack?)",
      ].join("\n"),
    );
    expect(bt.warnings).toHaveLength(2);
    const t = bt.threads[0]!;
    expect(t.frames.map((f) => f.function)).toEqual(["a", "b"]);
    expect(t.backtrace_stopped).toBe("previous frame inner to this frame (corrupt stack?)");
  });

  it("takes the first of duplicate thread blocks, and tolerates frame number gaps", () => {
    const bt = parseBacktrace(["Thread 1 (LWP 1):", "#0  0x1 in a ()", "#3  0x2 in b ()", "", "Thread 1 (LWP 1):", "#0  0x9 in zzz ()", "#1  0x9 in yyy ()"].join("\n"));
    expect(bt.threads).toHaveLength(1);
    expect(bt.threads[0]!.frames.map((f) => [f.index, f.function])).toEqual([
      [0, "a"],
      [3, "b"],
    ]);
  });

  it("does not append a second pasted bt to the last thread block", () => {
    const bt = parseBacktrace(["Thread 2 (LWP 2):", "#0  0x1 in a ()", "#1  0x2 in b ()", "(gdb) bt", "#0  0x5 in other ()"].join("\n"));
    expect(bt.threads[0]!.frames.map((f) => f.function)).toEqual(["a", "b"]);
  });

  it("reads CRLF text and indented (quoted) text", () => {
    const bt = parseBacktrace("  Thread 1 (LWP 3):\r\n  #0  0x1 in a () at a.c:1\r\n          x = 1\r\n  No locals.\r\n");
    expect(bt.threads[0]!.frames[0]).toMatchObject({ function: "a", file: "a.c", locals: ["x = 1"] });
  });

  it("returns an empty backtrace for empty or unrelated text", () => {
    expect(parseBacktrace("").threads).toEqual([]);
    expect(parseBacktrace("hello\nworld\n").threads).toEqual([]);
  });

  it("survives pathological lines", () => {
    const mb = 1024 * 1024;
    for (const junk of ["(".repeat(mb), "{".repeat(mb), '"'.repeat(mb), "'".repeat(mb), ")".repeat(mb)]) {
      const bt = parseBacktrace(`#0  0x1 in f ${junk}\n#1  0x2 in g () at g.c:1\nThread 1 (${junk}\n`);
      expect(bt.threads[0]!.frames.length).toBeGreaterThanOrEqual(1);
    }
  });

  it("parses ~10 MB of generated thread apply all bt full correctly", () => {
    const parts: string[] = ["Program terminated with signal SIGSEGV, Segmentation fault.", "[Current thread is 1 (Thread 0x7f00 (LWP 100))]", ""];
    let threads = 0;
    let size = 0;
    while (size < 10 * 1024 * 1024) {
      threads++;
      const block = [`Thread ${threads} (Thread 0x7f${threads.toString(16)} (LWP ${100 + threads - 1})):`];
      for (let i = 0; i < 20; i++) {
        block.push(
          `#${i}  0x00007f00000${i.toString(16).padStart(5, "0")} in ns::Klass<std::map<int, std::string> >::method${i} (this=0x5555, cb={f = {g = 1}}, s=0x1 "a (b)") at src/file${i}.cc:${i + 1}`,
          "        local = {x = 1, y = {z = 2}}",
          "        other = <optimized out>",
        );
      }
      block.push("");
      const text = block.join("\n");
      size += text.length + 1;
      parts.push(text);
    }
    const bt = parseBacktrace(parts.join("\n"));
    expect(bt.threads).toHaveLength(threads);
    expect(bt.threads.every((t) => t.frames.length === 20)).toBe(true);
    const last = bt.threads[threads - 1]!.frames[19]!;
    expect(last).toMatchObject({ function: "ns::Klass<std::map<int, std::string> >::method19", file: "src/file19.cc", line: 20 });
    expect(last.locals).toEqual(["local = {x = 1, y = {z = 2}}", "other = <optimized out>"]);
  });
});

describe('locals: "deferred"', () => {
  /** Parses both ways; fills every thread of the deferred parse. */
  function both(text: string) {
    const all = parseBacktrace(text);
    const deferred = parseBacktrace(text, { locals: "deferred" });
    const { deferredLocals, ...rest } = deferred;
    const bare = structuredClone(rest);
    for (const t of rest.threads) deferredLocals!.fill(t);
    return { all, filled: rest, bare };
  }

  const TRICKY = [
    "Thread 2 (Thread 0x7f02 (LWP 12)):",
    "#0  0x1 in a (x=1) at a.c:1\r",
    "        i = 1\r",
    "---Type <return> to continue, or q <return> to quit---        j = 2   ",
    `        big = "${"x".repeat(5000)}"`,
    "#1  0x2 in wrapped (a=1,",
    "    b=2) at w.c:3",
    "        k = 3",
    "No locals.",
    "#2  0x3 in none () from /lib/libc.so.6",
    "No symbol table info available.",
    "#3  0x4 in many () at m.c:1",
    ...Array.from({ length: MAX_LOCALS_PER_FRAME + 5 }, (_, i) => `        v${i} = ${i}`),
    "",
    "Thread 2 (Thread 0x7f02 (LWP 12)):",
    "#0  0x9 in ignored () at i.c:1",
    "        dropped = 1",
    "",
    "Thread 1 (Thread 0x7f01 (LWP 11)):",
    "#0  0x5 in main () at main.c:9",
    "        argc = 1",
  ].join("\n");

  const LOOSE = [
    "#0  0x1 in short () at s.c:1",
    "        s = 1",
    "",
    "#0  0x1 in f () at f.c:1",
    "        a = 1",
    "#1  0x2 in g () at g.c:2",
    "No locals.",
    "#2  0x3 in h () at h.c:3",
    "        b = {c = 2}",
  ].join("\n");

  it.each([
    ["thread blocks, wrapped frames, pager prompts, long and many locals, a repeated block", TRICKY],
    ["loose frame sequences (the longest is the thread)", LOOSE],
  ])('fills the same locals as locals: "all": %s', (_, text) => {
    const { all, filled, bare } = both(text);
    expect(filled).toEqual(all);
    expect(bare.threads.flatMap((t) => t.frames).some((f) => f.locals !== undefined)).toBe(false);
  });

  it('equals locals: "all" on every backtrace of the corpus', () => {
    const dir = join(process.cwd(), "fixtures", "backtraces");
    for (const name of readdirSync(dir).filter((f) => f.endsWith(".txt"))) {
      const { all, filled } = both(readFileSync(join(dir, name), "utf8"));
      expect({ name, bt: filled }).toEqual({ name, bt: all });
    }
  });

  it("fills a prefix of a thread's frames (a copy cut by the frame limit)", () => {
    const bt = parseBacktrace(TRICKY, { locals: "deferred" });
    const t = bt.threads[0]!;
    const cut = { ...t, frames: t.frames.slice(0, 2).map((f) => ({ ...f })) };
    bt.deferredLocals!.fill(cut);
    expect(cut.frames.map((f) => f.locals)).toEqual([["i = 1", "j = 2", expect.stringMatching(/^big = "x{4000,}/)], ["k = 3"]]);
    expect(t.frames[0]!.locals).toBeUndefined();
  });
});

describe("lean parse (keepFrames, onBlockEnd, line by line)", () => {
  const text = [
    "Thread 2 (LWP 12):",
    ...Array.from({ length: 9 }, (_, i) => `#${i}  0x${i} in f${i} (a=${i}) at a.c:${i}\n        x = ${i}`),
    "",
    "Thread 1 (LWP 11):",
    "#0  0x1 in main () at m.c:1",
    "Thread 2 (LWP 12):",
    "#0  0x9 in dup () at d.c:1",
  ].join("\n");

  it("keeps a block's first frames, counts the rest without keeping them, and says where each header line starts", () => {
    const ended: Array<[number, number]> = [];
    const p = backtraceLineParser({ locals: "none", keepFrames: 3, onBlockEnd: (t) => ended.push([t.number, t.frames.length]) });
    let offset = 0;
    for (const line of text.split("\n")) {
      p.line(line, offset);
      offset += line.length + 1;
    }
    const bt = p.finish();
    expect(bt.threads.map((t) => [t.number, t.frames.map((f) => f.function)])).toEqual([
      [2, ["f0", "f1", "f2"]],
      [1, ["main"]],
    ]);
    expect(bt.threads[0]!.frames.every((f) => f.locals === undefined)).toBe(true);
    expect([...bt.frameCounts!]).toEqual([
      [2, 9],
      [1, 1],
    ]);
    // The duplicate block of thread 2 is a header too, but it is ignored: no onBlockEnd for it.
    expect(bt.blocks!.map((b) => [b.number, text.slice(b.offset).split("\n", 1)[0]])).toEqual([
      [2, "Thread 2 (LWP 12):"],
      [1, "Thread 1 (LWP 11):"],
      [2, "Thread 2 (LWP 12):"],
    ]);
    expect(ended).toEqual([
      [2, 3],
      [1, 1],
    ]);
  });

  it("a block parsed again on its own gives the thread the whole parse gives", () => {
    const whole = parseBacktrace(text);
    const p = backtraceLineParser({ keepFrames: 1 });
    let offset = 0;
    for (const line of text.split("\n")) {
      p.line(line, offset);
      offset += line.length + 1;
    }
    const { blocks } = p.finish();
    expect(parseBacktrace(text.slice(blocks![0]!.offset, blocks![1]!.offset)).threads[0]).toEqual(whole.threads[0]);
  });
});
