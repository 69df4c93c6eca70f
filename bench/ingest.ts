/**
 * CoreSight API ingest throughput: CoreDog-shaped reports POSTed over HTTP
 * (16 at a time) to an in-process API, each answered only after its commit;
 * then how fast the outbox publisher drains them onto a real JetStream
 * stream (PubAck per report). SQLite (file, synchronous=FULL) and a private
 * PostgreSQL 15 (fsync off: its numbers show the API's own cost, not the
 * disk's). Measured, never asserted.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { countPending } from "../api/db/queries.js";
import { startApiService } from "../api/service.js";
import { loadApiConfig } from "../lib/config.js";
import { createLogger } from "../lib/log.js";
import { startNatsServer } from "../dev/nats.js";
import { startPostgres } from "../dev/postgres.js";
import { median, type BenchTable } from "./table.js";

const REPORTS = 2000;
const CONCURRENCY = 16;
const AGENT = "bench-agent-token-0123456789";

function report(i: number): string {
  return JSON.stringify({
    specversion: "1.0",
    type: "coredog.coredump.uploaded",
    source: "coredog-agent",
    id: `coredog-1765567205-${i}`,
    time: "2025-12-12T15:30:05Z",
    datacontenttype: "application/json",
    data: {
      coredump_id: 0,
      file_url: `http://dumps.cos.example/coredog/core.app.${i}.node7.1765567205?X-Amz-Signature=${"ab".repeat(32)}`,
      file_name: `core.app.${i}.node7.1765567205`,
      executable_path: "/app/server",
      file_size: 52428800,
      md5: "",
      image: "registry/app:1.0",
      timestamp: "2025-12-12T15:30:05Z",
      pod_name: `app-${i % 50}`,
      pod_namespace: "prod",
      node_name: `node-${i % 7}`,
    },
    token: AGENT,
  });
}

async function one(kind: string, databaseUrl: string, natsUrl: string, stream: string): Promise<Array<string | number>> {
  const api = await startApiService(
    loadApiConfig({ DATABASE_URL: databaseUrl, API_LISTEN: "127.0.0.1:0", CORESIGHT_AGENT_TOKENS: AGENT, NATS_URL: natsUrl, NATS_STREAM: stream, NATS_SUBJECT: `bench.${stream}` }),
    { logger: createLogger({ level: "silent", stdout: false }) },
  );
  try {
    const latencies: number[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < REPORTS) {
          const body = report(next++);
          const t = performance.now();
          const res = await fetch(api.url, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${AGENT}` }, body });
          await res.arrayBuffer();
          if (res.status !== 202) throw new Error(`ingest answered ${res.status}`);
          latencies.push(performance.now() - t);
        }
      }),
    );
    const ingestS = (performance.now() - started) / 1000;
    for (;;) {
      if ((await countPending(api.db.kysely)) === 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const drainedS = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    return [kind, REPORTS, CONCURRENCY, REPORTS / ingestS, median(latencies), latencies[Math.floor(latencies.length * 0.99)]!, REPORTS / drainedS];
  } finally {
    await api.stop();
  }
}

export default async function bench(): Promise<BenchTable> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-bench-ingest-"));
  const nats = await startNatsServer();
  const rows: Array<Array<string | number>> = [];
  try {
    rows.push(await one("SQLite file", `sqlite:${path.join(dir, "bench.db")}`, nats.url, "BENCH_SQLITE"));
    const pg = await startPostgres();
    try {
      rows.push(await one("PostgreSQL 15 (fsync off)", await pg.createDatabase("bench"), nats.url, "BENCH_PG"));
    } finally {
      await pg.stop();
    }
  } finally {
    await nats.stop();
    await fs.rm(dir, { recursive: true, force: true });
  }
  return {
    title: "CoreSight API ingest (POST → commit → 202; outbox → JetStream PubAck)",
    columns: ["database", "reports", "in flight", "ingest reports/s", "p50 ms", "p99 ms", "queued reports/s (until the outbox is empty)"],
    rows,
    notes: [
      "Each 202 is sent after the coredump, analysis and outbox rows are committed in one transaction; the publisher runs alongside, one PubAck at a time, in commit order.",
      "Client, API and nats-server share this machine's cores.",
    ],
  };
}
