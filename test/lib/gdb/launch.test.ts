import { spawn } from "node:child_process";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeAll, describe, expect, test } from "@jest/globals";
import { gdbCommand, killAllGdb, prestartedGdbPid, prestartGdb, startGdb, stopPrestartedGdb, takeGdb, type GdbLaunch } from "../../../lib/gdb/launch.js";
import { runGdb } from "../../../lib/gdb/run.js";
import { fixture, repoRoot, requireFixtures, type FixtureName } from "../../helpers/fixtures.js";

const LAUNCH: GdbLaunch = { gdbPath: "gdb", debuginfod: null, maxOutputBytes: 64 * 1024 * 1024 };

/** The process is gone (reaped or never started), waiting a little for the kernel. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A run on a fixture core: whether gdb read it, and the pid of the gdb it ran in. */
async function runOn(name: FixtureName, launch: Partial<GdbLaunch> = {}): Promise<{ pid: number; ok: boolean; prestarted: boolean }> {
  const f = fixture(name);
  let pid = -1;
  const run = await runGdb({ core: f.core, exe: f.exe, ...launch, onSpawn: (p) => (pid = p) });
  return { pid, ok: run.exitCode === 0 && /Program terminated with signal/.test(run.sections.banner ?? ""), prestarted: run.prestarted };
}

beforeAll(() => requireFixtures());
afterEach(() => stopPrestartedGdb());

describe("a prestarted gdb", () => {
  test("is the gdb the next matching run uses, and that run's answer is whole", async () => {
    const pid = prestartGdb(LAUNCH);
    expect(pid).toBeDefined();
    const r = await runOn("abort-assert");
    expect(r.ok).toBe(true);
    expect(r.pid).toBe(pid);
    expect(r.prestarted).toBe(true); // what the job's log line reports (gdb_prestarted)
    // Without keep, no other is started: the next run starts its own.
    const again = await runOn("null-deref");
    expect(again.ok).toBe(true);
    expect(again.pid).not.toBe(pid);
    expect(again.prestarted).toBe(false);
  });

  test("serves one run only: with keep, each run takes a fresh one and the next is started", async () => {
    prestartGdb(LAUNCH, { keep: true });
    const pids: number[] = [];
    for (const name of ["abort-assert", "null-deref", "div-zero"] as const) {
      const r = await runOn(name);
      expect(r.ok).toBe(true);
      pids.push(r.pid);
    }
    expect(new Set(pids).size).toBe(3);
    for (const p of pids) expect(await gone(p)).toBe(true);
    // The one started after the last run waits; stop ends it.
    const next = takeGdb(LAUNCH);
    expect(next.pid).toBeDefined();
    expect(alive(next.pid!)).toBe(true);
    stopPrestartedGdb();
    next.subprocess.stdin.end("");
    await next.subprocess;
  });

  test("is not used by a run with another output cap, and is still there for a matching one", async () => {
    const pid = prestartGdb(LAUNCH);
    const other = await runOn("abort-assert", { maxOutputBytes: 32 * 1024 * 1024 });
    expect(other.ok).toBe(true);
    expect(other.pid).not.toBe(pid);
    const matching = await runOn("abort-assert");
    expect(matching.ok).toBe(true);
    expect(matching.pid).toBe(pid);
  });

  test("that died while waiting is not used: the run starts its own and completes; with keep, the next one waits again", async () => {
    const pid = prestartGdb(LAUNCH, { keep: true })!;
    process.kill(-pid, "SIGKILL");
    expect(await gone(pid)).toBe(true);
    const r = await runOn("abort-assert");
    expect(r.ok).toBe(true);
    expect(r.pid).not.toBe(pid);
    // Taking the dead one started the next: it waits, and the next run uses it.
    const waiting = prestartedGdbPid();
    expect(waiting).toBeDefined();
    expect([pid, r.pid]).not.toContain(waiting);
    const next = await runOn("null-deref");
    expect(next.ok).toBe(true);
    expect(next.pid).toBe(waiting);
  });

  test("is killed by stopPrestartedGdb, and counted by killAllGdb while it waits", async () => {
    const g = startGdb(LAUNCH);
    expect(g.pid).toBeDefined();
    expect(killAllGdb()).toBeGreaterThanOrEqual(1);
    expect((await g.subprocess).signal).toBe("SIGKILL");

    const pid = prestartGdb(LAUNCH)!;
    expect(alive(pid)).toBe(true);
    stopPrestartedGdb();
    expect(await gone(pid)).toBe(true);
    const after = await runOn("null-deref");
    expect(after.ok).toBe(true);
    expect(after.pid).not.toBe(pid);
  });

  test("does not keep its process alive: a process that never takes it exits, and the gdb dies with it", async () => {
    // The compiled module, as the CLI runs it (make test builds dist/ first).
    const launch = pathToFileURL(path.join(repoRoot, "dist", "lib", "gdb", "launch.js")).href;
    const script = `const { prestartGdb } = await import(${JSON.stringify(launch)}); process.stdout.write(String(prestartGdb(${JSON.stringify(LAUNCH)})));`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    // A process the waiting gdb kept alive would never exit: give up after 30 s (no speed is measured here).
    const code = await new Promise<number | string | null>((resolve) => {
      const t = setTimeout(() => {
        child.kill("SIGKILL");
        resolve("still running after 30 s");
      }, 30_000);
      child.on("exit", (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    expect(code).toBe(0);
    const pid = Number(out);
    expect(pid).toBeGreaterThan(0);
    expect(await gone(pid)).toBe(true);
  });

  test("a gdb that does not exist fails as before (gdb_not_installed), prestarted or not", async () => {
    prestartGdb({ ...LAUNCH, gdbPath: "/nonexistent/gdb" });
    const f = fixture("null-deref");
    await expect(runGdb({ core: f.core, exe: f.exe, gdbPath: "/nonexistent/gdb" })).rejects.toMatchObject({ code: "gdb_not_installed" });
  });
});

describe("gdbCommand", () => {
  test("is the process startGdb starts: the same command line, and the environment it sets and removes", async () => {
    const want = gdbCommand(LAUNCH);
    const g = startGdb(LAUNCH);
    try {
      expect(g.subprocess.spawnargs).toEqual([want.command, ...want.args]);
    } finally {
      g.subprocess.stdin.end("");
      await g.subprocess;
    }
    expect(want.args).toEqual(expect.arrayContaining(["-nx", "-nh", "-batch"]));
    expect(want.env).toMatchObject({ LC_ALL: "C", PYTHONNOUSERSITE: "1", DEBUGINFOD_URLS: "" });
    // Removed from gdb's environment (execa drops a variable set to undefined): bench/floor/spawnGdb.ts must too.
    expect(Object.hasOwn(want.env, "PYTHONPATH") && want.env.PYTHONPATH === undefined).toBe(true);
  });
});
