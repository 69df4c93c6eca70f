/**
 * Pipeline overhead per job: a real worker process (dist/) consumes events
 * from a private nats-server, downloads from an S3 server on loopback, runs
 * gdb and PUTs to a stand-in API. From each job's closing log line:
 * overhead = total − gdb − download (queue handling, parsing, result store).
 */
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { startApiServer } from "../dev/api.js";
import { startNatsServer } from "../dev/nats.js";
import { startS3Server } from "../dev/s3.js";
import { type BenchTable, median } from "./table.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export default async function benchPipeline(): Promise<BenchTable> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-bench-pipeline-"));
  const nats = await startNatsServer();
  const s3 = await startS3Server();
  const api = await startApiServer({ token: "bench" });
  const nc = await connect({ servers: nats.url });
  const cores = ["null-deref", "multithread", "cxx-uncaught"];
  const perCore = 5;
  const logFile = path.join(tmp, "worker.log");
  const worker = spawn(process.execPath, [path.join(root, "dist/bundle/cli.js"), "run"], {
    env: {
      PATH: process.env.PATH ?? "",
      NATS_URL: nats.url,
      CORESIGHT_API_URL: api.url,
      CORESIGHT_API_TOKEN: "bench",
      S3_ENDPOINT: s3.endpoint,
      S3_FORCE_PATH_STYLE: "true",
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
      ALLOWED_DUMP_HOSTS: "127.0.0.1",
      WORK_DIR: path.join(tmp, "work"),
      LOG_FILE: logFile,
      METRICS_PORT: "0",
      WORKER_CONCURRENCY: "1",
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  try {
    await s3.createBucket("bench");
    const js = jetstream(nc);
    let n = 0;
    // Wait until the worker created the stream.
    for (let i = 0; i < 100; i++) {
      if ((await fs.readFile(logFile, "utf8").catch(() => "")).includes("waiting for coredump.uploaded events")) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const rows: BenchTable["rows"] = [];
    for (const name of cores) {
      const core = path.join(root, "build/fixtures", name, "core");
      await s3.putFile("bench", `${name}.core`, core);
      const url = await s3.presign("bench", `${name}.core`, 3600);
      for (let i = 0; i < perCore; i++) {
        n++;
        const ev = {
          specversion: "1.0",
          type: "coredog.coredump.uploaded",
          source: "bench",
          id: `bench-${name}-${i}`,
          data: { coredump_id: 0, file_url: url, file_name: `core.${name}.${i}`, md5: "" },
        };
        await js.publish("coredog.coredump.uploaded", JSON.stringify(ev));
      }
    }
    const deadline = Date.now() + 300_000;
    let jobs: Array<Record<string, number | string>> = [];
    while (Date.now() < deadline) {
      const text = await fs.readFile(logFile, "utf8").catch(() => "");
      jobs = text
        .split("\n")
        .filter((l) => l.includes('"msg":"job done"'))
        .map((l) => JSON.parse(l) as Record<string, number | string>);
      if (jobs.length >= n) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const analyses = text2analyses(await fs.readFile(logFile, "utf8"));
    const overhead: number[] = [];
    for (const name of cores) {
      const mine = jobs.filter((j) => analyses.get(String(j.analysis_id))?.startsWith(`core.${name}.`));
      const total = mine.map((j) => Number(j.total_ms));
      const dl = mine.map((j) => Number(j.download_ms));
      const an = mine.map((j) => Number(j.analyze_ms));
      const st = mine.map((j) => Number(j.store_ms));
      const gdb = mine.map((j) => gdbMs.get(String(j.analysis_id)) ?? NaN);
      const over = mine.map((_, i) => total[i]! - (gdb[i] ?? 0) - dl[i]!);
      overhead.push(...over);
      rows.push([name, mine.length, median(total), median(dl), median(gdb), median(an) - median(gdb), median(st), median(over)]);
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
    worker.kill("SIGTERM");
    await new Promise((r) => worker.once("exit", r));
    await nc.close();
    await api.stop();
    await s3.stop();
    await nats.stop();
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

const gdbMs = new Map<string, number>();
/** analysis_id → file name from the Received lines; gdb time from the analysis lines. */
function text2analyses(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line.includes('"msg":"Received coredump.uploaded"')) {
      const l = JSON.parse(line) as { analysis_id: string; file_name: string };
      out.set(l.analysis_id, l.file_name);
    } else if (line.includes('"msg":"analysis done"')) {
      const l = JSON.parse(line) as { analysis_id: string; gdb_ms?: number };
      if (typeof l.gdb_ms === "number") gdbMs.set(l.analysis_id, l.gdb_ms);
    }
  }
  return out;
}
