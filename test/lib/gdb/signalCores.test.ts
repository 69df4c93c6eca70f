/**
 * Who sent the fatal signal, on real cores of real programs (compiled and
 * crashed here by the test): the core's own pid (NT_PRPSINFO) against
 * siginfo's si_pid, and a crash handler that re-raises.
 */
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { analyzeDump } from "../../../lib/analyze.js";
import { compile, crashIn, tempDir } from "../symbols/crashFixture.js";
import { repoRoot } from "../../helpers/fixtures.js";

let dir: string;
beforeAll(async () => {
  dir = await tempDir("signal-cores");
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function caseDir(name: string): Promise<string> {
  const d = path.join(dir, name);
  await fs.mkdir(d);
  return d;
}

describe("the sender of the fatal signal", () => {
  it("a program that sends SIGSEGV to itself with kill(getpid()): self, not another process, not a hardware fault", async () => {
    const d = await caseDir("self");
    const exe = await compile(
      d,
      "selfkill",
      `#include <signal.h>
#include <unistd.h>
__attribute__((noinline)) void give_up(void) { kill(getpid(), SIGSEGV); pause(); }
int main(void) { give_up(); return 0; }
`,
    );
    const r = await analyzeDump({ core: await crashIn(d, exe), exe });
    expect(r.signal).toMatchObject({ name: "SIGSEGV", code: "SI_USER", fault_address: null, sender: { kind: "self", uid: process.getuid!() } });
    expect(r.signal?.description).toBe("Segmentation fault signal sent with kill() by the process itself, not raised by a hardware fault");
  });

  it("SIGABRT sent from outside (kill -ABRT): another process with its pid, and not abort()", async () => {
    const d = await caseDir("external");
    const exe = await compile(
      d,
      "waiter",
      `#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) void wait_for_work(void) { puts("ready"); fflush(stdout); for (;;) pause(); }
int main(void) { wait_for_work(); return 0; }
`,
    );
    const child = spawn("bash", ["-c", `ulimit -c unlimited; exec '${exe}'`], { cwd: d, stdio: ["ignore", "pipe", "ignore"] });
    await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
    const exited = new Promise((resolve) => child.once("exit", resolve));
    process.kill(child.pid!, "SIGABRT");
    await exited;
    const r = await analyzeDump({ core: path.join(d, "core"), exe });
    expect(r.signal).toMatchObject({ name: "SIGABRT", code: "SI_USER", sender: { kind: "process", pid: process.pid } });
    expect(r.signal?.description).toMatch(
      new RegExp(`^Aborted: SIGABRT sent with kill\\(\\) by another process \\(pid ${process.pid}, uid \\d+\\); the process did not call abort\\(\\)`),
    );
    expect(r.threads.find((t) => t.crashed)!.frames.some((f) => f.function === "wait_for_work")).toBe(true);
  });

  it("abort() called by the process: self", async () => {
    const d = await caseDir("abort");
    const exe = await compile(
      d,
      "aborter",
      `#include <stdlib.h>
__attribute__((noinline)) void check(int ok) { if (!ok) abort(); }
int main(void) { check(0); return 0; }
`,
    );
    const r = await analyzeDump({ core: await crashIn(d, exe), exe });
    expect(r.signal).toMatchObject({ name: "SIGABRT", code: "SI_TKILL", sender: { kind: "self" } });
    expect(r.signal?.description).toMatch(/^Aborted: the process called abort\(\)/);
  });

  it("a crash handler that re-raises: the real fault below <signal handler called> is named", async () => {
    const d = await caseDir("reraise");
    const exe = await compile(
      d,
      "reraiser",
      `#include <signal.h>
static void on_fault(int sig) { signal(sig, SIG_DFL); raise(sig); }
__attribute__((noinline)) int store_value(int *slot) { *slot = 42; return *slot; }
int main(void) { signal(SIGSEGV, on_fault); return store_value((int *)0); }
`,
    );
    const r = await analyzeDump({ core: await crashIn(d, exe), exe });
    expect(r.signal).toMatchObject({ name: "SIGSEGV", code: "SI_TKILL", sender: { kind: "self" }, reraised: true });
    expect(r.signal?.description).toBe("Segmentation fault re-raised by the process's own signal handler (a crash handler): the original fault is in store_value");
    expect(r.crash_frame?.function).toBe("store_value");
  });

  it("a crash handler that re-raises while it runs (SA_NODEFER): the frame below <signal handler called> is named", async () => {
    const d = await caseDir("reraise-nodefer");
    const exe = await compile(
      d,
      "nodefer",
      `#include <signal.h>
#include <string.h>
static void on_fault(int sig) { signal(sig, SIG_DFL); raise(sig); }
__attribute__((noinline)) int store_value(int *slot) { *slot = 42; return *slot; }
int main(void) {
  struct sigaction sa; memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_fault; sa.sa_flags = SA_NODEFER;
  sigaction(SIGSEGV, &sa, 0);
  return store_value((int *)0);
}
`,
    );
    const r = await analyzeDump({ core: await crashIn(d, exe), exe });
    const crash = r.threads.find((t) => t.crashed)!;
    expect(crash.frames.some((f) => f.signal_handler)).toBe(true);
    expect(r.signal).toMatchObject({ name: "SIGSEGV", code: "SI_TKILL", sender: { kind: "self" }, reraised: true });
    expect(r.signal?.description).toMatch(/the original fault is in store_value$/);
  });

  it("a hardware fault: sent by the kernel", async () => {
    const d = await caseDir("fault");
    const exe = await compile(
      d,
      "fault",
      `__attribute__((noinline)) int load(int *p) { return *p; }
int main(void) { return load((int *)0); }
`,
    );
    const r = await analyzeDump({ core: await crashIn(d, exe), exe });
    expect(r.signal).toMatchObject({ name: "SIGSEGV", code: "SEGV_MAPERR", sender: { kind: "kernel", pid: null, uid: null } });
    expect(r.signal?.description).toMatch(/null pointer dereference/);
  });
});

describe("grouping that does not depend on chance", () => {
  it("5 fresh crashes of the same deep recursion give one signature hash", async () => {
    const source = await fs.readFile(path.join(repoRoot, "fixtures/crashes/stack-overflow.c"), "utf8");
    const d = await caseDir("recursion");
    const exe = await compile(d, "recurse", source);
    const hashes = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const run = await caseDir(`recursion-${i}`);
      const r = await analyzeDump({ core: await crashIn(run, exe), exe });
      expect(r.signal?.name).toBe("SIGSEGV");
      hashes.add(`${r.signature?.text} ${r.signature?.hash}`);
    }
    expect([...hashes]).toEqual([expect.stringMatching(/^descend [0-9a-f]{16}$/)]);
  });
});
