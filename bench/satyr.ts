/**
 * `coresight-worker parse` against satyr (abrt/satyr, the C backtrace parser
 * ABRT uses), whole processes side by side on the same 19 MB text,
 * interleaved round-robin: wall time and peak RSS.
 *
 * satyr is not packaged for Debian 12 or npm: it is measured when a build is
 * given by path, SATYR_PARSE_GDB=<satyr-parse-gdb> (bench/satyr/build.sh
 * builds satyr and that driver from a satyr source tree). Without it the
 * table says so and has our rows only.
 *
 * satyr rejects parts of the parser bench's text (upstream satyr 0.43: a
 * thread name in a header, the char literal '(' in an argument, GCC's
 * `{lambda(...)#1}` and Rust's `<T as Trait>::f` names), so both parse a
 * variant with those four rewritten to plain names of about the same length;
 * the run checks that satyr found every thread and frame of it.
 *
 * Each process runs under a small python3 wrapper that times it (its own
 * start-up excluded) and reads its peak RSS (RUSAGE_CHILDREN maxrss): the
 * same measure for the C program and for node.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { synthesize } from "./parser.js";
import { type BenchTable, median } from "./table.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const bundle = path.join(root, "dist/bundle/cli.js");
const MB = 1024 * 1024;
const ROUNDS = 5;

/** The parser bench's text with the constructs upstream satyr cannot parse rewritten (see the module doc). */
export function satyrCompatible(text: string): string {
  return text
    .replace(/^(Thread \d+ \(Thread 0x[0-9a-f]+ \(LWP \d+\)) "[^"]*"\):$/gm, "$1):")
    .replaceAll(", c=40 '(') at ", ", c=40 'a') at ")
    .replaceAll("{lambda(int, std::shared_ptr<Conn>)#1}", "_lambda(int, std::shared_ptr<Conn>)_1_")
    .replaceAll("<tokio::runtime::blocking::task::BlockingTask<T> as core::future::future::Future>::poll", "tokio::runtime::blocking::task::BlockingTask_T_::Future::poll");
}

const WRAPPER = `
import resource, subprocess, sys, time
t0 = time.monotonic()
r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
ms = (time.monotonic() - t0) * 1000
sys.stderr.buffer.write(r.stderr)
print(f"{ms} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss} {r.returncode} {len(r.stdout)}")
sys.stdout.write(r.stdout[-4096:].decode("utf-8", "replace"))
`;

interface Run {
  ms: number;
  rssKb: number;
  outBytes: number;
  out: string;
}

function measured(cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn("python3", ["-c", WRAPPER, cmd, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString("utf8")));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString("utf8")));
    child.on("error", reject);
    child.on("close", () => {
      const nl = stdout.indexOf("\n");
      const [ms, rss, code, bytes] = stdout.slice(0, nl).split(" ").map(Number);
      if (code !== 0 || !Number.isFinite(ms)) reject(new Error(`${path.basename(cmd)} ${args.join(" ")} failed (${code}): ${stderr.slice(0, 1000)}`));
      else resolve({ ms: ms!, rssKb: rss!, outBytes: bytes!, out: stdout.slice(nl + 1) });
    });
  });
}

export default async function benchSatyr(): Promise<BenchTable> {
  const satyr = process.env.SATYR_PARSE_GDB ?? "";
  const gen = synthesize(19 * MB);
  const text = satyrCompatible(gen.text);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-satyr-"));
  const file = path.join(dir, "bt.txt");
  fs.writeFileSync(file, text);
  const bytes = Buffer.byteLength(text);
  try {
    const sides: Array<[string, string, string[]]> = [
      ["coresight-worker parse (human summary)", process.execPath, [bundle, "parse", file]],
      ["coresight-worker parse --json (summary)", process.execPath, [bundle, "parse", file, "--json"]],
      ["coresight-worker parse --json --full (every frame)", process.execPath, [bundle, "parse", file, "--json", "--full"]],
    ];
    if (satyr) sides.unshift(["satyr-parse-gdb (C, sr_gdb_stacktrace_parse)", satyr, [file]]);
    const runs = new Map<string, Run[]>();
    for (let round = 0; round < ROUNDS; round++) {
      for (const [label, cmd, args] of sides) {
        const r = await measured(cmd, args);
        runs.set(label, [...(runs.get(label) ?? []), r]);
      }
    }
    const notes: string[] = [];
    let anchor: { ms: number; rssKb: number } | null = null;
    if (satyr) {
      const first = runs.get(sides[0]![0])![0]!;
      const got = JSON.parse(first.out.trim().split("\n").pop()!) as { threads: number; frames: number };
      if (got.threads !== gen.threads || got.frames !== gen.frames)
        throw new Error(`satyr parsed ${got.threads} threads / ${got.frames} frames of ${gen.threads} / ${gen.frames}: not the same work`);
      notes.push(`satyr parsed all ${got.threads} threads and ${got.frames} frames of the text (checked).`);
    } else {
      notes.push("satyr not measured: SATYR_PARSE_GDB is not set (bench/satyr/build.sh builds satyr-parse-gdb from a satyr source tree; satyr is in neither Debian 12 nor npm).");
    }
    const rows: Array<Array<string | number>> = [];
    for (const [label] of sides) {
      const rs = runs.get(label)!;
      const ms = median(rs.map((r) => r.ms));
      const rssKb = Math.max(...rs.map((r) => r.rssKb));
      if (label.startsWith("satyr")) anchor = { ms, rssKb };
      rows.push([
        label,
        ms.toFixed(0),
        (rssKb / 1024).toFixed(0),
        anchor && !label.startsWith("satyr") ? `${(ms / anchor.ms).toFixed(2)}×` : "",
        anchor && !label.startsWith("satyr") ? `${(rssKb / anchor.rssKb).toFixed(2)}×` : "",
        (rs[0]!.outBytes / MB).toFixed(2),
      ]);
    }
    notes.push(
      `${(bytes / MB).toFixed(1)} MB of \`thread apply all bt full\` text (bench/parser.ts's generator, ${gen.threads} threads, ${gen.frames} frames, made satyr-compatible), ${ROUNDS} rounds interleaved; wall = median, peak RSS = the largest of the rounds.`,
      "Ratios are ours / satyr's: time > 1 is slower than satyr, RSS > 1 is more memory. The issue's targets: RSS ≤ 2×, `parse` time ≤ 1.2×.",
      "satyr keeps the whole text and every frame (no locals, no arguments); `parse` and `parse --json` keep each thread's first frames and the crash thread whole (summarizeSource), `--json --full` every frame with its arguments.",
    );
    return { title: "parse vs satyr, whole process", columns: ["what", "wall ms (median)", "peak RSS MB", "time vs satyr", "RSS vs satyr", "MB written"], rows, notes };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
