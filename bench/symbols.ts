/**
 * Extra time per analysis for symbol resolution: the same crash analyzed
 * with the unstripped executable given directly (no resolution), then with
 * the executable fetched by build-id from a symbol store on S3 (s3rver on
 * loopback, in its own process) and from a local debuginfod, each with a
 * cold cache (a fresh cache directory per run) and a warm one.
 *
 * Loopback servers: real S3 and debuginfod add network latency on top; what
 * this measures is the worker's own cost (inventory, ladder, cache, tree).
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import { freePort } from "../dev/port.js";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { S3Client, CreateBucketCommand } from "@aws-sdk/client-s3";
import { execa } from "execa";
import { analyzeDump } from "../lib/analyze.js";
import { addToStore } from "../lib/symbols/add.js";
import { readBuildId } from "../lib/elf/buildId.js";
import type { PreparedSymbols } from "../lib/symbols/prepare.js";
import { openSymbolStore } from "../lib/symbols/store.js";
import { type BenchTable, median } from "./table.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const RUNS = 9;

const SOURCE = `#include <stdio.h>
struct item { int value; };
__attribute__((noinline)) int crash_here(struct item *it) { return it->value; }
int main(int argc, char **argv) { (void)argv; printf("%d\\n", crash_here(argc > 100 ? (struct item *)&argc : NULL)); return 0; }
`;

async function startS3(dir: string): Promise<{ endpoint: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [path.join(root, "scripts/s3-server.mjs"), "--dir", dir, "--port", "0", "--exit-with-stdin"], {
    stdio: ["pipe", "pipe", "inherit"],
    env: process.env,
  });
  const line = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (d: string) => {
      out += d;
      if (out.includes("\n")) resolve(out.split("\n")[0]!);
    });
    child.once("exit", (c) => reject(new Error(`s3-server exited ${c}`)));
  });
  child.stdout!.resume();
  return { endpoint: (JSON.parse(line) as { endpoint: string }).endpoint, child };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

export default async function benchSymbols(): Promise<BenchTable> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-bench-symbols-"));
  const children: ChildProcess[] = [];
  let s3: S3Client | null = null;
  try {
    // The crash: built, crashed, then its files leave this machine's paths.
    const build = path.join(tmp, "build");
    await fs.mkdir(build);
    await fs.writeFile(path.join(build, "crash.c"), SOURCE);
    await execa("gcc", ["-g", "-O0", "-Wl,--build-id", "-o", "crash", "crash.c"], { cwd: build });
    await execa("bash", ["-c", "ulimit -c unlimited; exec ./crash"], { cwd: build, reject: false });
    const core = path.join(build, "core");
    await fs.access(core);
    const keep = path.join(tmp, "artifacts");
    await fs.mkdir(keep);
    const exe = path.join(keep, "crash");
    await fs.rename(path.join(build, "crash"), exe);
    const id = (await readBuildId(exe))!;

    // S3 symbol store.
    const s3srv = await startS3(path.join(tmp, "s3"));
    children.push(s3srv.child);
    s3 = new S3Client({
      region: "us-east-1",
      endpoint: s3srv.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
    await s3.send(new CreateBucketCommand({ Bucket: "symbols" }));
    await addToStore([exe], openSymbolStore("s3://symbols/bench", s3));

    // debuginfod.
    const served = path.join(tmp, "served");
    await fs.mkdir(served);
    await fs.copyFile(exe, path.join(served, "crash"));
    const port = await freePort();
    const dfdChild = spawn("debuginfod", ["-F", served, "-p", String(port), "-d", path.join(tmp, "dfd.sqlite"), "-t", "1"], { stdio: "ignore" });
    children.push(dfdChild);
    const dfdUrl = `http://127.0.0.1:${port}`;
    for (let i = 0; i < 150; i++) {
      const ok = await fetch(`${dfdUrl}/buildid/${id}/executable`).then(
        async (r) => (await r.body?.cancel(), r.status === 200),
        () => false,
      );
      if (ok) break;
      if (i === 149) throw new Error("debuginfod did not index in 15 s");
      await new Promise((r) => setTimeout(r, 100));
    }

    let job = 0;
    const jobDir = async () => {
      const d = path.join(tmp, `job-${++job}`);
      await fs.mkdir(d, { recursive: true });
      return d;
    };
    type Once = (run: number) => Promise<{ fn: string | null; resolveMs: number | null }>;
    const withSymbols =
      (symbols: (run: number) => Parameters<typeof analyzeDump>[0]["symbols"], extra: { exe?: string } = {}): Once =>
      async (run) => {
        let prepared: PreparedSymbols | null = null;
        const r = await analyzeDump({ core, workDir: await jobDir(), ...extra, symbols: symbols(run), onSymbols: (p) => (prepared = p) });
        return { fn: r.crash_frame?.function ?? null, resolveMs: (prepared as PreparedSymbols | null)?.durationMs ?? null };
      };
    const big = 1 << 30;
    const scenarios: Array<[string, Once]> = [
      [
        "exe given directly (analyzeDump, no resolution)",
        async () => {
          const r = await analyzeDump({ core, exe, workDir: await jobDir() });
          return { fn: r.crash_frame?.function ?? null, resolveMs: null };
        },
      ],
      ["--exe through analyzeDump (inventory + ladder, host libs)", withSymbols(() => ({ cacheDir: path.join(tmp, "c0"), cacheMaxBytes: big }), { exe })],
      ["S3 symbol store, cold cache", withSymbols((i) => ({ store: "s3://symbols/bench", s3, cacheDir: path.join(tmp, `s3cold-${i}`), cacheMaxBytes: big }))],
      ["S3 symbol store, warm cache", withSymbols(() => ({ store: "s3://symbols/bench", s3, cacheDir: path.join(tmp, "s3warm"), cacheMaxBytes: big }))],
      ["debuginfod, cold cache", withSymbols((i) => ({ debuginfodUrls: dfdUrl, cacheDir: path.join(tmp, `dfdcold-${i}`), cacheMaxBytes: big }))],
      ["debuginfod, warm cache", withSymbols(() => ({ debuginfodUrls: dfdUrl, cacheDir: path.join(tmp, "dfdwarm"), cacheMaxBytes: big }))],
      [
        "debuginfod, warm cache, gdb's own debuginfod client on too",
        withSymbols(() => ({ debuginfodUrls: dfdUrl, gdbDebuginfod: true, cacheDir: path.join(tmp, "dfdwarm"), cacheMaxBytes: big })),
      ],
    ];
    // Warm caches get their first (cold) fill before timing starts.
    await scenarios[3]![1](0);
    await scenarios[5]![1](0);
    // Round-robin: each run goes through every scenario, so load drift on a
    // shared machine hits all of them alike.
    const times = scenarios.map(() => [] as number[]);
    const resolve = scenarios.map(() => [] as number[]);
    const fns: Array<string | null> = scenarios.map(() => null);
    for (let i = 0; i < RUNS; i++) {
      for (const [k, [, once]] of scenarios.entries()) {
        const t0 = performance.now();
        const r = await once(i + 1);
        times[k]!.push(performance.now() - t0);
        if (r.resolveMs !== null) resolve[k]!.push(r.resolveMs);
        fns[k] = r.fn;
      }
    }
    const direct = median(times[0]!);
    const rows: Array<Array<string | number>> = scenarios.map(([name], k) => [
      name,
      median(times[k]!),
      k === 0 ? 0 : median(times[k]!) - direct,
      resolve[k]!.length ? median(resolve[k]!) : "-",
      fns[k] ?? "??",
    ]);
    const size = (await fs.stat(exe)).size;
    return {
      title: "Symbol resolution: extra time per analysis",
      columns: ["analysis", "median ms", "extra ms vs direct", "resolution ms (median)", "crash frame"],
      rows,
      notes: [
        `${RUNS} runs each, round-robin over the scenarios, median; one small C crash (executable ${size} bytes, 3 modules: exe, libc, ld.so; libc and ld.so found on the host by build-id).`,
        "Cold = a fresh cache directory per run (every remote file downloaded); warm = a cache filled before timing.",
        "Servers on loopback (s3rver in its own process, Debian debuginfod): network latency to a real store comes on top, once per file per cache.",
        "'resolution ms' = inventory (eu-unstrip + notes) + ladder + tree, measured inside analyzeDump; the rest is gdb.",
      ],
    };
  } finally {
    s3?.destroy();
    for (const c of children) await stopChild(c).catch(() => undefined);
    await fs.rm(tmp, { recursive: true, force: true });
  }
}
