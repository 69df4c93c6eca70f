/**
 * A crash storm: 100 cores of one crash (one program crashing 100 times, each
 * process with its own ASLR layout) and 10 distinct crashes mixed in, analyzed
 * one after another with analyzeDump as the worker does, once without and once
 * with deduplication (a real nats-server's JetStream KV bucket, DEDUP_AFTER=1):
 * gdb runs, wall time, and whether every deduplicated result's signature is
 * the one the full analysis of that same core gave.
 */
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { connect } from "@nats-io/transport-node";
import { analyzeDump } from "../lib/analyze.js";
import { createDeduplicator, openDedupStore } from "../lib/dedup/store.js";
import type { Result } from "../lib/result.js";
import { startNatsServer } from "../dev/nats.js";
import type { BenchTable } from "./table.js";

const run = promisify(execFile);
const IDENTICAL = 100;
const DISTINCT = 10;

/** Ten crash sites in one program: `storm K` crashes in fK (K = 0 is the storm). */
const SOURCE = `#include <stdio.h>
#include <stdlib.h>
#define F(n) __attribute__((noinline)) int f##n(volatile int *p) { return p[n] + n; }
F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10)
static int (*const fs[])(volatile int *) = { f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10 };
int main(int argc, char **argv) {
  int k = argc > 1 ? atoi(argv[1]) : 0;
  printf("%d\\n", fs[k % 11](NULL));
  return 0;
}
`;

async function makeCores(dir: string): Promise<{ exe: string; cores: Array<{ core: string; kind: "storm" | "distinct" }> }> {
  const exe = path.join(dir, "storm");
  await fs.writeFile(`${exe}.c`, SOURCE);
  await run("gcc", ["-g", "-O0", "-o", exe, `${exe}.c`]);
  const cores: Array<{ core: string; kind: "storm" | "distinct" }> = [];
  const crash = async (k: number, i: number) => {
    await run("bash", ["-c", `ulimit -c unlimited; exec ./storm ${k}`], { cwd: dir }).catch(() => undefined);
    const core = path.join(dir, `core.${i}`);
    await fs.rename(path.join(dir, "core"), core);
    return core;
  };
  let i = 0;
  for (let n = 0; n < IDENTICAL; n++) {
    cores.push({ core: await crash(0, i++), kind: "storm" });
    // A distinct crash every tenth core: the storm does not arrive alone.
    if (n % (IDENTICAL / DISTINCT) === 5) cores.push({ core: await crash(1 + cores.filter((c) => c.kind === "distinct").length, i++), kind: "distinct" });
  }
  return { exe, cores };
}

export default async function benchStorm(): Promise<BenchTable> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-bench-storm-"));
  const nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  try {
    const { exe, cores } = await makeCores(dir);
    const pass = async (dedup: ReturnType<typeof createDeduplicator> | null) => {
      const t0 = performance.now();
      const results: Result[] = [];
      for (const [i, c] of cores.entries()) {
        results.push(await analyzeDump({ core: c.core, exe, ...(dedup ? { dedup: dedup.forJob(`storm-${i}`) } : {}) }));
      }
      return { s: (performance.now() - t0) / 1000, results, gdbRuns: results.filter((r) => r.gdb !== null).length };
    };
    const full = await pass(null);
    const bucket = await openDedupStore(nc, { bucket: `bench_storm_${process.pid}`, ttlMs: 3_600_000 });
    const deduped = await pass(createDeduplicator(bucket, { after: 1 }));
    const marked = deduped.results.filter((r) => r.deduplicated_from !== undefined).length;
    const agree = deduped.results.filter((r, i) => r.status === "completed" && r.signature?.hash === full.results[i]!.signature?.hash).length;
    const distinctFull = deduped.results.filter((r, i) => cores[i]!.kind === "distinct" && r.gdb !== null).length;
    const n = cores.length;
    return {
      title: `Crash storm: ${IDENTICAL} identical + ${DISTINCT} distinct crashes, one at a time`,
      columns: ["mode", "cores", "gdb runs", "wall s", "ms per core", "wall vs without"],
      rows: [
        ["DEDUP=off", n, full.gdbRuns, full.s, (1000 * full.s) / n, "1.00"],
        ["DEDUP=on, DEDUP_AFTER=1 (JetStream KV)", n, deduped.gdbRuns, deduped.s, (1000 * deduped.s) / n, (deduped.s / full.s).toFixed(2)],
      ],
      notes: [
        `gdb runs saved: ${full.gdbRuns - deduped.gdbRuns} of ${full.gdbRuns}; ${marked} results marked deduplicated_from; all ${distinctFull} of ${DISTINCT} distinct crashes analyzed fully.`,
        `signature of each DEDUP=on result equal to the full analysis of the same core: ${agree} of ${n}.`,
        "Both passes in this run, same cores, same order; a deduplicated core costs the core checks, the notes, one eu-stack and one KV read.",
      ],
    };
  } finally {
    await nc.close();
    await nats.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
}
