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
 * Two floors run in the same rounds, so that the analyze ratio can be read
 * against what no front end can go under: a node process that only hands gdb
 * a command file computed beforehand (the same sections, the same index
 * cache), once through execa with the worker's launch code (bench/floor/
 * execaGdb.ts, bundled here as the CLI is) and once through
 * node:child_process (bench/floor/spawnGdb.ts).
 *
 * Every process gets a clean environment (PATH, HOME, a private WORK_DIR).
 */
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { buildCommandFile, newNonce } from "../lib/gdb/commandFile.js";
import { gdbCommand, DEFAULT_GDB_MAX_OUTPUT_BYTES } from "../lib/gdb/launch.js";
import { goProbeSection } from "../lib/gdb/probes/go.js";
import { runtimeProbeSection } from "../lib/gdb/probes/runtime.js";
import { DEFAULT_MAX_FRAMES } from "../lib/config.js";
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

/** bench/floor/execaGdb.js bundled into `dir` as scripts/bundle.mjs bundles the CLI (split, execa loaded after the compile cache is on). */
async function bundleExecaFloor(dir: string): Promise<string> {
  await build({
    entryPoints: { execaGdb: path.join(root, "dist/bench/floor/execaGdb.js") },
    outdir: dir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node22",
    banner: { js: 'import { createRequire as __coresightRequire } from "node:module"; const require = __coresightRequire(import.meta.url);' },
    logLevel: "warning",
  });
  return path.join(dir, "execaGdb.js");
}

/**
 * The floors' inputs for one core: the command file analyze's gdb would get
 * (the same sections and probes, gdb's index cache in `indexDir`; the host's
 * libraries and debug files in place of the job's tree of links to them), and
 * spawnGdb's spec (gdbCommand: the process startGdb starts).
 */
async function floorInputs(dir: string, core: string, exe: string, indexDir: string): Promise<{ commandFile: string; spec: string }> {
  const commandFile = path.join(dir, "commands.py");
  await fs.writeFile(
    commandFile,
    buildCommandFile({ core, exe, maxFrames: DEFAULT_MAX_FRAMES, nonce: newNonce(), indexCacheDir: indexDir, extraSections: [runtimeProbeSection(), goProbeSection()] }),
  );
  const { command, args, env } = gdbCommand({ gdbPath: "gdb", debuginfod: null, maxOutputBytes: DEFAULT_GDB_MAX_OUTPUT_BYTES });
  const spec = path.join(dir, "spec.json");
  await fs.writeFile(spec, JSON.stringify({ command, args, env: Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v ?? null])), commandFile }));
  return { commandFile, spec };
}

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
    rows.push(["node -e 0 (anchor)", node!.toFixed(1), "", "", "", "", "", ""]);
    rows.push(["--help", help!.toFixed(1), ratio(help!, node!), "", helpDist!.toFixed(1), ratio(helpDist!, node!), "", ""]);
    rows.push(["analyze --help", analyzeHelp!.toFixed(1), ratio(analyzeHelp!, node!), "", "", "", "", ""]);

    const execaFloor = await bundleExecaFloor(path.join(work, "floor-bundle"));
    const spawnFloor = path.join(root, "dist/bench/floor/spawnGdb.js");
    const indexDir = path.join(work, "floor-index");
    await fs.mkdir(indexDir, { recursive: true });
    const sums = { gdb: 0, warm: 0, off: 0, dist: 0, execa: 0, spawn: 0 };
    const dir = path.join(root, "build", "fixtures");
    const noCache = { GDB_INDEX_CACHE: "false" };
    for (const name of CORES) {
      const core = path.join(dir, name, "core");
      const exe = path.join(dir, name, name);
      if (!(await fs.stat(core).catch(() => null))) throw new Error(`${core} missing: make fixtures`);
      const analyze = (cli: string, own?: NodeJS.ProcessEnv): Cmd => [process.execPath, [cli, "analyze", core, "--exe", exe], own];
      const floorDir = path.join(work, `floor-${name}`);
      await fs.mkdir(floorDir);
      const floor = await floorInputs(floorDir, core, exe, indexDir);
      const floors: Cmd[] = [
        [process.execPath, [execaFloor, floor.commandFile]],
        [process.execPath, [spawnFloor, floor.spec]],
      ];
      // One run first, so that the index cache holds this core's libraries (a worker's state after its first jobs).
      for (const [cmd, args] of [analyze(bundle), ...floors]) {
        await timed(cmd, args, env);
      }
      const [gdb, warm, off, dist, execaMs, spawnMs] = await roundRobin(
        [["gdb", ["-batch", "-ex", "thread apply all bt full", exe, core]], analyze(bundle), analyze(bundle, noCache), analyze(unbundled), ...floors],
        5,
        env,
      );
      sums.gdb += gdb!;
      sums.warm += warm!;
      sums.off += off!;
      sums.dist += dist!;
      sums.execa += execaMs!;
      sums.spawn += spawnMs!;
      rows.push([
        `analyze ${name} (anchor: bare gdb ${gdb!.toFixed(0)} ms)`,
        warm!.toFixed(0),
        ratio(warm!, gdb!),
        `${off!.toFixed(0)} (${ratio(off!, gdb!)})`,
        dist!.toFixed(0),
        ratio(dist!, gdb!),
        `${execaMs!.toFixed(0)} (${ratio(execaMs!, gdb!)})`,
        `${spawnMs!.toFixed(0)} (${ratio(spawnMs!, gdb!)})`,
      ]);
    }
    rows.push([
      `analyze, ${CORES.length} cores summed (anchor: bare gdb ${sums.gdb.toFixed(0)} ms)`,
      sums.warm.toFixed(0),
      ratio(sums.warm, sums.gdb),
      `${sums.off.toFixed(0)} (${ratio(sums.off, sums.gdb)})`,
      sums.dist.toFixed(0),
      ratio(sums.dist, sums.gdb),
      `${sums.execa.toFixed(0)} (${ratio(sums.execa, sums.gdb)})`,
      `${sums.spawn.toFixed(0)} (${ratio(sums.spawn, sums.gdb)})`,
    ]);
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
  return {
    title: "CLI start-up and analyze, whole process",
    columns: [
      "what",
      "shipped binary, ms (median)",
      "ratio to anchor",
      "same, no gdb index cache: ms (ratio)",
      "unbundled dist/, ms",
      "ratio to anchor",
      "floor, gdb via execa: ms (ratio)",
      "floor, gdb via node:child_process: ms (ratio)",
    ],
    rows,
    notes: [
      "Interleaved round-robin in this run: 15 rounds for the help rows (anchor: node -e 0), 5 per core for analyze (anchor: bare `gdb -batch -ex 'thread apply all bt full' <exe> <core>`, what a user would type instead). Ratio > 1 = slower than the anchor.",
      "shipped binary = dist/bundle/cli.js (scripts/bundle.mjs); unbundled = dist/worker/cli.js, tsc's output it is bundled from. Both analyze columns but the third read gdb's index cache (GDB_INDEX_CACHE, warmed by one run of each core first: a worker's state after its first jobs); the third runs with GDB_INDEX_CACHE=false, so gdb reads all DWARF as the bare anchor does.",
      "analyze does more than the anchor: it finds every module by build-id, runs gdb once with the C++/Go/Rust probes, registers and disassembly, and parses; the issue's target is ≤ 1.1×.",
      "The floors (same rounds, index cache warmed alike): a node process that turns the compile cache on, starts gdb and hands it analyze's command file for the core, computed before the process started, then waits for gdb's end; nothing else (no configuration, core checks, symbols, parse or output). 'via execa' is the worker's own launch code (lib/gdb/launch.ts startGdb, bench/floor/execaGdb.ts bundled as the CLI is); 'via node:child_process' spawns the same process (launch.ts gdbCommand) without execa (bench/floor/spawnGdb.ts). analyze cannot go under the execa floor; the gap between the two floors is what loading and using execa costs a one-shot process.",
    ],
  };
}
