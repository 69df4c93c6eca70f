/**
 * Pipeline overhead per job: a real worker process (dist/) consumes events
 * from a private nats-server, downloads from an S3 server on loopback, runs
 * gdb and PUTs to a stand-in API. From each job's closing log line:
 * overhead = total − gdb − download (queue handling, parsing, result store).
 */
import fs from "node:fs/promises";
import { jetstream } from "@nats-io/jetstream";
import { fixture, jobTimings, spawnWorker, startStack, uploadedEvent, type JobTiming } from "./stack.js";
import { type BenchTable, median } from "./table.js";

export default async function benchPipeline(): Promise<BenchTable> {
  const stack = await startStack("pipeline");
  const cores = ["null-deref", "multithread", "cxx-uncaught"];
  const perCore = 5;
  const worker = spawnWorker(stack, stack.tmp);
  try {
    const js = jetstream(stack.nc);
    let n = 0;
    // Wait until the worker created the stream.
    await worker.ready();
    const rows: BenchTable["rows"] = [];
    for (const name of cores) {
      await stack.s3.putFile("bench", `${name}.core`, fixture(name).core);
      const url = await stack.s3.presign("bench", `${name}.core`, 3600);
      for (let i = 0; i < perCore; i++) {
        n++;
        await js.publish("coredog.coredump.uploaded", uploadedEvent(`bench-${name}-${i}`, url, `core.${name}.${i}`));
      }
    }
    const deadline = Date.now() + 300_000;
    let jobs: JobTiming[] = [];
    while (Date.now() < deadline) {
      jobs = jobTimings(await fs.readFile(worker.logFile, "utf8").catch(() => ""));
      if (jobs.length >= n) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const overhead: number[] = [];
    for (const name of cores) {
      const mine = jobs.filter((j) => j.fileName?.startsWith(`core.${name}.`));
      const of = (k: keyof JobTiming) => median(mine.map((j) => Number(j[k])));
      overhead.push(...mine.map((j) => j.overheadMs));
      rows.push([name, mine.length, of("totalMs"), of("downloadMs"), of("gdbMs"), of("analyzeMs") - of("gdbMs"), of("storeMs"), of("overheadMs")]);
    }
    return {
      title: "Pipeline overhead per job (worker process, median ms)",
      columns: ["core", "jobs", "total", "download", "gdb", "parse+analyze outside gdb", "store (PUT)", "overhead = total − gdb − download"],
      rows,
      notes: [
        `median overhead over all ${overhead.length} jobs: ${median(overhead).toFixed(1)} ms`,
        "one worker, WORKER_CONCURRENCY=1, nats-server + s3rver + stand-in API on loopback; times from the worker's own log lines",
      ],
    };
  } finally {
    await worker.stop();
    await stack.stop();
  }
}
