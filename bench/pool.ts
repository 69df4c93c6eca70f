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
}

const SETUPS: Setup[] = [
  { label: "2 workers × WORKER_CONCURRENCY=1", workers: 2, concurrency: 1 },
  { label: "1 worker × WORKER_CONCURRENCY=2", workers: 1, concurrency: 2 },
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

/** The anchor: xargs -P2 curl + bare gdb per core. Wall seconds. */
async function anchor(dumps: Dump[], dir: string): Promise<number> {
  await fs.mkdir(dir, { recursive: true });
  const list = dumps.map((d, i) => `${path.join(dir, `core.${i}`)} ${d.url} ${d.exe}`).join("\n") + "\n";
  const script = `curl -sf -o "$0" "$1" && gdb -batch -ex 'thread apply all bt full' "$2" "$0" >/dev/null 2>&1; s=$?; rm -f "$0"; exit $s`;
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
    return spawnWorker(stack, dir, { NATS_STREAM: stream, NATS_SUBJECT: subject, WORKER_CONCURRENCY: String(setup.concurrency) });
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
    const anchorS: number[] = [];
    const runs = SETUPS.map(() => [] as PoolRun[]);
    for (let r = 0; r < rounds; r++) {
      // Odd rounds run the other way round: anchor last.
      const order = [-1, ...SETUPS.keys()];
      if (r % 2 === 1) order.reverse();
      for (const k of order) {
        if (k < 0) anchorS.push(await anchor(dumps, path.join(stack.tmp, `anchor-${r}`)));
        else runs[k]!.push(await pool(stack, dumps, SETUPS[k]!, `r${r}s${k}`));
      }
    }
    const best = (xs: number[]) => Math.min(...xs);
    const [aBest, aMed] = [best(anchorS), median(anchorS)];
    const wallCells = (xs: number[]) => [best(xs), median(xs), n / best(xs), (1000 * SLOTS * best(xs)) / n];
    const rows: BenchTable["rows"] = [[`anchor: xargs -P${SLOTS} curl + gdb`, n, ...wallCells(anchorS), "1.00", "1.00", "-", "-"]];
    const notes: string[] = [];
    for (const [k, setup] of SETUPS.entries()) {
      const walls = runs[k]!.map((p) => p.s);
      const jobs = runs[k]!.flatMap((p) => p.jobs);
      const failed = runs[k]!.reduce((a, p) => a + p.failed, 0);
      if (failed > 0) notes.push(`${setup.label}: ${failed} of ${n * rounds} results not completed.`);
      rows.push([
        setup.label,
        n,
        ...wallCells(walls),
        (aBest / best(walls)).toFixed(2),
        (aMed / median(walls)).toFixed(2),
        median(jobs.map((j) => j.gdbMs)),
        median(jobs.map((j) => j.overheadMs)),
      ]);
    }
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
        "gdb ms (median job)",
        "overhead ms (median job)",
      ],
      rows,
      notes: [
        `ratio = anchor wall / pool wall, best against best and median against median (the upper median for an even count); ≥ 0.90 is the target, > 1 is faster than xargs. Anchor walls: ${anchorS.map((s) => s.toFixed(2)).join(", ")} s.`,
        `${n} distinct S3 objects, fixtures ${KINDS.join(", ")} in turn; DEDUP=off so every job runs gdb; rounds alternate the order (odd rounds anchor last).`,
        "pool wall: first publish to the last result stored (stand-in API); workers started and ready before. gdb and overhead (total − gdb − download) per job from the workers' own log lines, all rounds.",
        "the worker's gdb runs more than the anchor's (registers, disassembly, shared libraries, the C++/Go probes) in the job's symbol tree; the anchor discards gdb's output unparsed.",
        ...notes,
      ],
    };
  } finally {
    await stack.stop();
  }
}
