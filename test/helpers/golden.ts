/**
 * Golden files: expected output kept in the repository, compared as JSON.
 *
 * - `UPDATE_GOLDEN=1` rewrites the golden file with the actual value.
 * - On a mismatch, `<golden>.actual` is written beside it (gitignored), so a
 *   reviewer can diff the two and copy it over when the change is intended.
 * - Values are scrubbed first: what changes from run to run (ASLR addresses,
 *   pids) never reaches a golden file. Source paths need no scrubbing: the
 *   fixtures are compiled with -ffile-prefix-map (scripts/build-fixtures.sh),
 *   so no path of the building machine is in their debug info; a golden that
 *   shows one is a bug in that script. The checkout's own path (where the
 *   fixture binaries sit) becomes `<repo>`.
 * - `stableResult()` turns a whole production result into what a golden pins:
 *   every field stays, and only what belongs to the machine rather than the
 *   crash is replaced by a placeholder naming what it stood for.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { expect } from "@jest/globals";
import type { Frame, Result } from "../../lib/result.js";
import { repoRoot } from "./fixtures.js";

export const goldenDir = path.join(repoRoot, "fixtures", "golden");

/** Addresses below this are kept: a null pointer plus an offset is part of the behaviour. */
const KEEP_BELOW = 0x10000n;

/** Replaces large hex addresses and LWP/pid numbers in every string of `value`. */
export function scrub<T>(value: T): T {
  if (typeof value === "string") {
    return value
      .replace(/\b0x[0-9a-fA-F]+\b/g, (a) => (BigInt(a) < KEEP_BELOW ? a : "<addr>"))
      .replace(/\b(LWP|pid|process) \d+/g, "$1 <pid>")
      .replaceAll(repoRoot, "<repo>") as T;
  }
  if (Array.isArray(value)) return value.map((v: unknown) => scrub(v)) as T;
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrub(v)])) as T;
  }
  return value;
}

/** How a fixture's result differs from machine to machine beyond what `stableResult` always replaces. */
export interface Variance {
  /**
   * The runtime picks its OS threads and its own goroutines (Go's sysmon, GC
   * workers, finalizers): only the crash thread and the goroutines running
   * the program's code (a `main.` frame) are pinned.
   */
  runtimeChoosesThreads?: boolean;
  /**
   * How deep a runaway recursion got depends on the stack the kernel gave the
   * process (its environment and auxv come first, and the stack's start is
   * randomized): numbers in arguments are not pinned. Nor is where in the
   * last frame the guard page was hit (the prologue's first store, with the
   * arguments not yet written, or the push of a later call): the line and
   * arguments of frame #0 and the disassembly at the faulting pc.
   */
  stackDepthVaries?: boolean;
  /**
   * The other threads race the crashing one: where each was when the kernel
   * stopped them differs from run to run (one still in pthread_create, one
   * already waiting). Their number and state are pinned, their frames not.
   */
  otherThreadsRace?: boolean;
  /**
   * The toolchain's own frames (Rust's panic machinery, linked into the
   * program) differ between releases: only frames of the fixture's source
   * are pinned, without their index, and the quality (a share of frames).
   */
  toolchainChoosesFrames?: boolean;
}

/**
 * The whole result with the machine taken out: when and where it ran (time,
 * worker, gdb's version, stderr and duration), register values, the core's
 * size (the kernel's stack and auxv layout), thread ids, build-ids (a Debian
 * point release changes the system libraries', a toolchain release the
 * program's), the values of
 * locals (an uninitialised local holds whatever the stack held), and the
 * disassembly when the faulting pc is in a system library rather than the
 * program, and the order of the modules (by address, so by ASLR). Addresses and pids go through `scrub` as well.
 */
export function stableResult(r: Result, variance: Variance = {}): unknown {
  const system = (file: string | null | undefined) => !file || !file.startsWith(repoRoot);
  const frames = (list: Frame[]) =>
    list
      .filter((f) => !variance.toolchainChoosesFrames || f.file?.startsWith("fixtures/"))
      .map((f) => ({
        ...f,
        ...(variance.toolchainChoosesFrames ? { index: "<index>" } : {}),
        ...(variance.stackDepthVaries && f.args ? { args: f.args.replace(/=\d+/g, "=<n>") } : {}),
        ...(variance.stackDepthVaries && f.index === 0 ? { line: "<where the guard page was hit>", args: "<where the guard page was hit>" } : {}),
        locals: f.locals?.map((l) => l.replace(/ = [\s\S]*$/, " = <value>")),
      }));
  const crash = r.threads.find((t) => t.crashed);
  const threads = (variance.runtimeChoosesThreads ? r.threads.filter((t) => t.crashed) : r.threads).map((t) => ({
    ...t,
    lwp: t.lwp === null ? null : "<lwp>",
    thread_id: t.thread_id === null ? null : "<thread id>",
    frames: variance.otherThreadsRace && !t.crashed ? "<where the thread was>" : frames(t.frames),
  }));
  const systemIds = new Set((r.modules ?? []).filter((m) => system(m.file ?? m.path)).map((m) => m.build_id));
  const buildId = (id: string | null) => (id === null ? null : systemIds.has(id) ? "<system build-id>" : "<build-id>");
  return scrub({
    ...r,
    ...(variance.toolchainChoosesFrames ? { quality: "<share of frames>" } : {}),
    signal: r.signal && { ...r.signal, sender: r.signal.sender && { ...r.signal.sender, pid: r.signal.sender.pid === null ? null : "<pid>" } },
    analyzed_at: "<time>",
    worker: "<worker>",
    gdb: r.gdb && { ...r.gdb, version: "<gdb version>", duration_ms: "<ms>", stderr: "<stderr>" },
    core: r.core && { ...r.core, size: "<bytes>" },
    threads,
    ...(r.goroutines ? { goroutines: variance.runtimeChoosesThreads ? r.goroutines.filter((g) => g.frames.some((f) => f.function?.startsWith("main."))) : r.goroutines } : {}),
    crash_frame: r.crash_frame && frames([r.crash_frame])[0],
    // Which registers: gdb's general group, plus the AVX-512 mask registers k0-k7 on a CPU that has them (the machine's, not the core's).
    registers:
      r.registers &&
      Object.fromEntries(
        Object.keys(r.registers)
          .filter((k) => !/^k[0-7]$/.test(k))
          .map((k) => [k, "<value>"]),
      ),
    disassembly: r.disassembly && (variance.stackDepthVaries ? "<where the guard page was hit>" : crash?.frames[0]?.in_app ? r.disassembly : "<system library code>"),
    // By path as the golden shows it (`<repo>/...`, not the checkout's own path, which sorts differently on every machine):
    // the inventory lists them by address, and where ASLR put each library is the machine's choice.
    modules: r.modules
      ?.map((m) => ({ ...m, build_id: buildId(m.build_id) }))
      .sort((a, b) => {
        const [x, y] = [scrub(a.path), scrub(b.path)];
        return x < y ? -1 : x > y ? 1 : 0;
      }),
    symbolication: r.symbolication && {
      ...r.symbolication,
      missing_build_ids: r.symbolication.missing_build_ids.map(buildId),
      without_debug_info_build_ids: r.symbolication.without_debug_info_build_ids?.map(buildId),
    },
  });
}

/** Compares `actual` (scrubbed) with fixtures/golden/<name>.json, or rewrites it under UPDATE_GOLDEN=1. */
export async function expectGolden(name: string, actual: unknown, env: { UPDATE_GOLDEN?: string } = process.env): Promise<void> {
  const file = path.join(goldenDir, `${name}.json`);
  const value = scrub(actual);
  const text = JSON.stringify(value, null, 2) + "\n";
  if (env.UPDATE_GOLDEN === "1") {
    await fs.mkdir(goldenDir, { recursive: true });
    await fs.writeFile(file, text);
    await fs.rm(`${file}.actual`, { force: true });
    return;
  }
  const expected: unknown = JSON.parse(
    await fs.readFile(file, "utf8").catch(() => {
      throw new Error(`golden file ${file} missing: run with UPDATE_GOLDEN=1 to create it`);
    }),
  );
  if (JSON.stringify(expected) !== JSON.stringify(value)) {
    await fs.writeFile(`${file}.actual`, text);
  } else {
    await fs.rm(`${file}.actual`, { force: true });
  }
  expect(value).toEqual(expected);
}
