/**
 * Whole-process cost of the CLI against what a user compares it with, side
 * by side and interleaved round-robin in one run (a noisy machine shifts both
 * sides of a ratio alike):
 *
 * - `--help` and `analyze --help` against `node -e 0` (bare node start-up);
 * - `coresight-worker analyze <core> --exe <exe>` of six fixture cores against
 *   bare `gdb -batch -ex 'thread apply all bt full' <exe> <core>` (what a user
 *   would type instead), summed over the cores.
 *
 * Every process gets a clean environment (PATH, HOME, a private WORK_DIR).
 */
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type BenchTable, median } from "./table.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The shipped binary (scripts/bundle.mjs), and tsc's output it is bundled from. */
const bundle = path.join(root, "dist/bundle/cli.js");
const unbundled = path.join(root, "dist/worker/cli.js");
const CORES = ["null-deref", "abort-assert", "cxx-uncaught", "multithread", "stripped", "rust-panic"];

/** Runs a process to its end with output discarded; resolves with its wall time in ms. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: "ignore", env });
    child.once("error", reject);
    child.once("close", () => resolve(performance.now() - t0));
  });
}

type Cmd = [string, string[], NodeJS.ProcessEnv?];

/** Median wall time of each command, run round-robin `rounds` times. */
async function roundRobin(cmds: Cmd[], rounds: number, env: NodeJS.ProcessEnv): Promise<number[]> {
  const times = cmds.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    for (const [i, [cmd, args, own]] of cmds.entries()) times[i]!.push(await timed(cmd, args, { ...env, ...own }));
  }
  return times.map(median);
}

const ratio = (ours: number, anchor: number) => `${(ours / anchor).toFixed(2)}×`;

export default async function benchStartup(): Promise<BenchTable> {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-bench-startup-"));
  const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp", WORK_DIR: work, LOG_FILE: "" };
  const rows: BenchTable["rows"] = [];
  try {
    const [node, help, helpDist, analyzeHelp] = await roundRobin(
      [
        [process.execPath, ["-e", "0"]],
        [process.execPath, [bundle, "--help"]],
        [process.execPath, [unbundled, "--help"]],
        [process.execPath, [bundle, "analyze", "--help"]],
      ],
      15,
      env,
    );
    rows.push(["node -e 0 (anchor)", node!.toFixed(1), "", "", "", ""]);
    rows.push(["--help", help!.toFixed(1), ratio(help!, node!), "", helpDist!.toFixed(1), ratio(helpDist!, node!)]);
    rows.push(["analyze --help", analyzeHelp!.toFixed(1), ratio(analyzeHelp!, node!), "", "", ""]);

    const sums = { gdb: 0, warm: 0, off: 0, dist: 0 };
    const dir = path.join(root, "build", "fixtures");
    const noCache = { GDB_INDEX_CACHE: "false" };
    for (const name of CORES) {
      const core = path.join(dir, name, "core");
      const exe = path.join(dir, name, name);
      if (!(await fs.stat(core).catch(() => null))) throw new Error(`${core} missing: make fixtures`);
      const analyze = (cli: string, own?: NodeJS.ProcessEnv): Cmd => [process.execPath, [cli, "analyze", core, "--exe", exe], own];
      // One run first, so that the index cache holds this core's libraries (a worker's state after its first jobs).
      const [warmCmd, warmArgs] = analyze(bundle);
      await timed(warmCmd, warmArgs, env);
      const [gdb, warm, off, dist] = await roundRobin(
        [["gdb", ["-batch", "-ex", "thread apply all bt full", exe, core]], analyze(bundle), analyze(bundle, noCache), analyze(unbundled)],
        5,
        env,
      );
      sums.gdb += gdb!;
      sums.warm += warm!;
      sums.off += off!;
      sums.dist += dist!;
      rows.push([
        `analyze ${name} (anchor: bare gdb ${gdb!.toFixed(0)} ms)`,
        warm!.toFixed(0),
        ratio(warm!, gdb!),
        `${off!.toFixed(0)} (${ratio(off!, gdb!)})`,
        dist!.toFixed(0),
        ratio(dist!, gdb!),
      ]);
    }
    rows.push([
      `analyze, ${CORES.length} cores summed (anchor: bare gdb ${sums.gdb.toFixed(0)} ms)`,
      sums.warm.toFixed(0),
      ratio(sums.warm, sums.gdb),
      `${sums.off.toFixed(0)} (${ratio(sums.off, sums.gdb)})`,
      sums.dist.toFixed(0),
      ratio(sums.dist, sums.gdb),
    ]);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
  return {
    title: "CLI start-up and analyze, whole process",
    columns: ["what", "shipped binary, ms (median)", "ratio to anchor", "same, no gdb index cache: ms (ratio)", "unbundled dist/, ms", "ratio to anchor"],
    rows,
    notes: [
      "Interleaved round-robin in this run: 15 rounds for the help rows (anchor: node -e 0), 5 per core for analyze (anchor: bare `gdb -batch -ex 'thread apply all bt full' <exe> <core>`, what a user would type instead). Ratio > 1 = slower than the anchor.",
      "shipped binary = dist/bundle/cli.js (scripts/bundle.mjs); unbundled = dist/worker/cli.js, tsc's output it is bundled from. Both analyze columns but the third read gdb's index cache (GDB_INDEX_CACHE, warmed by one run of each core first: a worker's state after its first jobs); the third runs with GDB_INDEX_CACHE=false, so gdb reads all DWARF as the bare anchor does.",
      "analyze does more than the anchor: it finds every module by build-id, runs gdb once with the C++/Go/Rust probes, registers and disassembly, and parses; the issue's target is ≤ 1.1×.",
    ],
  };
}
