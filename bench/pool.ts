/**
 * Pool throughput against bare gdb (issue 15): the same N cores (a mix of
 * fixtures, each uploaded as its own S3 object) through
 *
 * - the anchor: `xargs -P2`, per core `curl -s -o` of its presigned URL, then
 *   `gdb -batch -ex 'thread apply all bt full' <exe> <core>`: what two busy
 *   slots of bare gdb get through, with the same S3 server;
 * - the worker pool: real worker processes (dist/), 2 × WORKER_CONCURRENCY=1
 *   and 1 × WORKER_CONCURRENCY=2, every event published up front, timed from
 *   the first publish to the last result stored at the stand-in API.
 *
 * DEDUP=off, so every job runs gdb (the fixtures repeat: with deduplication
 * most would not). Rounds alternate the order of the three, so the noise of
 * a shared machine reaches each. BENCH_POOL_JOBS (default 200) and
 * BENCH_POOL_ROUNDS (default 2) change the size.
 */
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { jetstream } from "@nats-io/jetstream";
import PQueue from "p-queue";
import { fixture, jobTimings, spawnWorker, startStack, uploadedEvent, type BenchStack, type JobTiming } from "./stack.js";
import { type BenchTable, median } from "./table.js";

const KINDS = ["null-deref", "multithread", "cxx-uncaught", "abort-assert"];
/** Slots on both sides: two xargs processes, two jobs in flight in the pool. */
const SLOTS = 2;

interface Dump {
  url: string;
  exe: string;
  kind: string;
}

interface Setup {
  label: string;
  workers: number;
  concurrency: number;
  env?: Record<string, string>;
}

const SETUPS: Setup[] = [
  { label: "2 workers × WORKER_CONCURRENCY=1", workers: 2, concurrency: 1 },
  { label: "1 worker × WORKER_CONCURRENCY=2", workers: 1, concurrency: 2 },
  // The same as the first, each gdb started with its job: what the gdb started ahead (lib/gdb/launch.ts) is worth.
  { label: "2 workers × 1, GDB_PRESTART=false", workers: 2, concurrency: 1, env: { GDB_PRESTART: "false" } },
];

/** Uploads N distinct objects, fixture i % 4 each; their presigned URLs. */
async function uploadDumps(stack: BenchStack, n: number): Promise<Dump[]> {
  const queue = new PQueue({ concurrency: 8 });
  return Promise.all(
    Array.from(
      { length: n },
      (_, i) =>
        queue.add(async () => {
          const kind = KINDS[i % KINDS.length]!;
          const key = `pool/${i}-${kind}.core`;
          await stack.s3.putFile("bench", key, fixture(kind).core);
          return { url: await stack.s3.presign("bench", key, 6 * 3600), exe: fixture(kind).exe, kind };
        }) as Promise<Dump>,
    ),
  );
}

/**
 * The anchors: bare gdb as the issue names it, and with the worker's own
 * start-up flags (no init files, nothing auto-loaded: no libstdc++ pretty
 * printers, no libthread_db), which the worker's gdb runs with.
 */
const ANCHORS = [
  { label: `anchor: xargs -P${SLOTS} curl + gdb`, flags: "" },
  { label: `anchor 2: the same, gdb -nx -iex 'set auto-load off'`, flags: "-nx -iex 'set auto-load off' " },
];

/** An anchor run: xargs -P2 curl + bare gdb per core. Wall seconds. */
async function anchor(dumps: Dump[], dir: string, gdbFlags: string): Promise<number> {
  await fs.mkdir(dir, { recursive: true });
  const list = dumps.map((d, i) => `${path.join(dir, `core.${i}`)} ${d.url} ${d.exe}`).join("\n") + "\n";
  const script = `curl -sf -o "$0" "$1" && gdb ${gdbFlags}-batch -ex 'thread apply all bt full' "$2" "$0" >/dev/null 2>&1; s=$?; rm -f "$0"; exit $s`;
  const t0 = performance.now();
  const child = spawn("xargs", [`-P${SLOTS}`, "-n3", "sh", "-c", script], { stdio: ["pipe", "ignore", "inherit"] });
  child.stdin.end(list);
  const code = await new Promise<number | null>((r) => child.once("exit", r));
  const s = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`anchor: xargs exited with ${code} (a curl or gdb failed)`);
  return s;
}

interface PoolRun {
  s: number;
  jobs: JobTiming[];
  failed: number;
}

/** One pool run on its own stream: workers ready, then every event published; ends at the N-th stored result. */
async function pool(stack: BenchStack, dumps: Dump[], setup: Setup, tag: string): Promise<PoolRun> {
  const stream = `POOL_${tag}`;
  const subject = `pool.${tag}.uploaded`;
  const workers = Array.from({ length: setup.workers }, (_, w) => {
    const dir = path.join(stack.tmp, tag, `w${w}`);
    return spawnWorker(stack, dir, { NATS_STREAM: stream, NATS_SUBJECT: subject, WORKER_CONCURRENCY: String(setup.concurrency), ...setup.env });
  });
  try {
    await Promise.all(workers.map((w) => w.ready()));
    stack.api.results.clear();
    stack.api.requests.length = 0;
    const js = jetstream(stack.nc);
    const t0 = performance.now();
    await Promise.all(dumps.map((d, i) => js.publish(subject, uploadedEvent(`${tag}-${i}`, d.url, `core.${d.kind}.${i}`))));
    const deadline = Date.now() + 30 * 60_000;
    while (stack.api.results.size < dumps.length) {
      if (Date.now() > deadline) throw new Error(`pool ${tag}: ${stack.api.results.size} of ${dumps.length} results after 30 min`);
      await new Promise((r) => setTimeout(r, 10));
    }
    const s = (performance.now() - t0) / 1000;
    const failed = [...stack.api.results.values()].filter((docs) => (docs.at(-1) as { status?: string }).status !== "completed").length;
    // After the exit: the last job's closing line may still be unwritten when its result is stored.
    await Promise.all(workers.map((w) => w.stop()));
    const jobs: JobTiming[] = [];
    for (const w of workers) jobs.push(...jobTimings(await fs.readFile(w.logFile, "utf8")));
    return { s, jobs, failed };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

export default async function benchPool(): Promise<BenchTable> {
  const n = Number(process.env.BENCH_POOL_JOBS ?? 200);
  const rounds = Number(process.env.BENCH_POOL_ROUNDS ?? 2);
  const stack = await startStack("pool");
  try {
    const dumps = await uploadDumps(stack, n);
    const anchorS = ANCHORS.map(() => [] as number[]);
    const runs = SETUPS.map(() => [] as PoolRun[]);
    for (let r = 0; r < rounds; r++) {
      // Anchors first in even rounds, last in odd ones.
      const order = [...ANCHORS.map((a) => ({ a })), ...SETUPS.map((_, k) => ({ k }))];
      if (r % 2 === 1) order.reverse();
      for (const step of order) {
        if ("a" in step) {
          const k = ANCHORS.indexOf(step.a);
          anchorS[k]!.push(await anchor(dumps, path.join(stack.tmp, `anchor${k}-${r}`), step.a.flags));
        } else runs[step.k]!.push(await pool(stack, dumps, SETUPS[step.k]!, `r${r}s${step.k}`));
      }
    }
    const best = (xs: number[]) => Math.min(...xs);
    const [aBest, aMed, a2Best] = [best(anchorS[0]!), median(anchorS[0]!), best(anchorS[1]!)];
    const ratios = (xs: number[]) => [(aBest / best(xs)).toFixed(2), (aMed / median(xs)).toFixed(2), (a2Best / best(xs)).toFixed(2)];
    const wallCells = (xs: number[]) => [best(xs), median(xs), n / best(xs), (1000 * SLOTS * best(xs)) / n, ...ratios(xs)];
    const rows: BenchTable["rows"] = ANCHORS.map((a, k) => [a.label, n, ...wallCells(anchorS[k]!), "-", "-"]);
    const notes: string[] = [];
    for (const [k, setup] of SETUPS.entries()) {
      const walls = runs[k]!.map((p) => p.s);
      const jobs = runs[k]!.flatMap((p) => p.jobs);
      const failed = runs[k]!.reduce((a, p) => a + p.failed, 0);
      if (failed > 0) notes.push(`${setup.label}: ${failed} of ${n * rounds} results not completed.`);
      rows.push([setup.label, n, ...wallCells(walls), median(jobs.map((j) => j.gdbMs)), median(jobs.map((j) => j.overheadMs))]);
    }
    const walls = (xs: number[]) => xs.map((s) => s.toFixed(2)).join(", ");
    return {
      title: `Pool throughput vs xargs -P${SLOTS} bare gdb (${n} cores, ${rounds} rounds)`,
      columns: [
        "setup",
        "cores",
        "best wall s",
        "median wall s",
        "jobs/s (best)",
        "ms per job per slot",
        "ratio best",
        "ratio median",
        "ratio best vs anchor 2",
        "gdb ms (median job)",
        "overhead ms (median job)",
      ],
      rows,
      notes: [
        `ratio = anchor wall / pool wall, best against best and median against median (the upper median for an even count); ≥ 0.90 is the target, > 1 is faster than xargs. Walls per round: anchor ${walls(anchorS[0]!)} s; anchor 2 ${walls(anchorS[1]!)} s; ${SETUPS.map((p, k) => `${p.label} ${walls(runs[k]!.map((x) => x.s))} s`).join("; ")}.`,
        `${n} distinct S3 objects, fixtures ${KINDS.join(", ")} in turn; DEDUP=off so every job runs gdb; rounds alternate the order (anchors first in even rounds, last in odd ones).`,
        "anchor 2 starts gdb as the worker does (no init files, no auto-loaded scripts such as libstdc++'s pretty printers): bare gdb's start-up without what the worker switches off for safety.",
        "pool wall: first publish to the last result stored (stand-in API); workers started and ready before. gdb and overhead (total − gdb − download) per job from the workers' own log lines, all rounds.",
        "GDB_PRESTART=false: every gdb starts when its job reaches it, as before the gdb started ahead; the first row, with it, is the default.",
        "the worker's gdb runs more than the anchor's (registers, disassembly, shared libraries, the C++/Go probes) in the job's symbol tree; the anchor discards gdb's output unparsed.",
        ...notes,
      ],
    };
  } finally {
    await stack.stop();
  }
}
