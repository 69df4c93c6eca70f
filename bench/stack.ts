/**
 * What the benches that run the real worker share: the servers it talks to
 * (a private nats-server, s3rver in its own process, the stand-in API, all on
 * loopback), worker processes from dist/ against them, the events they are
 * sent, and the per-job timings read back from the worker's own log lines.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { startApiServer, type DevApiServer } from "../dev/api.js";
import { startNatsServer, type DevNatsServer } from "../dev/nats.js";
import { startS3Server, type S3TestServer } from "../dev/s3.js";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** A fixture's core and the executable beside it (build/fixtures/<name>/). */
export function fixture(name: string): { core: string; exe: string } {
  const dir = path.join(root, "build/fixtures", name);
  return { core: path.join(dir, "core"), exe: path.join(dir, name) };
}

export interface BenchStack {
  nats: DevNatsServer;
  s3: S3TestServer;
  api: DevApiServer;
  nc: NatsConnection;
  /** A temp dir of the bench's own, removed by stop(). */
  tmp: string;
  stop(): Promise<void>;
}

/** Starts nats-server, s3rver (with bucket `bench`) and the stand-in API (token `bench`). */
export async function startStack(name: string): Promise<BenchStack> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), `coresight-bench-${name}-`));
  const nats = await startNatsServer();
  const s3 = await startS3Server();
  const api = await startApiServer({ token: "bench" });
  const nc = await connect({ servers: nats.url });
  await s3.createBucket("bench");
  return {
    nats,
    s3,
    api,
    nc,
    tmp,
    async stop() {
      await nc.close();
      await api.stop();
      await s3.stop();
      await nats.stop();
      await fs.rm(tmp, { recursive: true, force: true });
    },
  };
}

export interface WorkerProcess {
  logFile: string;
  child: ChildProcess;
  /** Resolves once the worker logged that it waits for events; throws if it exits or takes over 30 s. */
  ready(): Promise<void>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/**
 * `coresight-worker run` from dist/ against the stack, its work dir and log
 * file under `dir`; `env` adds to (or overrides) the defaults
 * (WORKER_CONCURRENCY=1, DEDUP=off, probes off).
 */
export function spawnWorker(stack: BenchStack, dir: string, env: Record<string, string> = {}): WorkerProcess {
  const logFile = path.join(dir, "worker.log");
  const child = spawn(process.execPath, [path.join(root, "dist/bundle/cli.js"), "run"], {
    env: {
      PATH: process.env.PATH ?? "",
      NATS_URL: stack.nats.url,
      CORESIGHT_API_URL: stack.api.url,
      CORESIGHT_API_TOKEN: "bench",
      S3_ENDPOINT: stack.s3.endpoint,
      S3_FORCE_PATH_STYLE: "true",
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
      ALLOWED_DUMP_HOSTS: "127.0.0.1",
      WORK_DIR: path.join(dir, "work"),
      LOG_FILE: logFile,
      METRICS_PORT: "0",
      WORKER_CONCURRENCY: "1",
      DEDUP: "off",
      ...env,
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return {
    logFile,
    child,
    async ready() {
      const deadline = Date.now() + 30_000;
      while (!(await fs.readFile(logFile, "utf8").catch(() => "")).includes("waiting for coredump.uploaded events")) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`worker exited with ${child.exitCode ?? child.signalCode} before it was ready`);
        if (Date.now() > deadline) throw new Error("worker not ready after 30 s");
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/** A coredump.uploaded event (CloudEvents JSON) for a dump at `url`. */
export function uploadedEvent(id: string, url: string, fileName: string): string {
  return JSON.stringify({
    specversion: "1.0",
    type: "coredog.coredump.uploaded",
    source: "bench",
    id,
    data: { coredump_id: 0, file_url: url, file_name: fileName, md5: "" },
  });
}

/** One job's timings from the worker's log: its `job done`, `analysis done` and `Received` lines. */
export interface JobTiming {
  analysisId: string;
  fileName: string | null;
  totalMs: number;
  downloadMs: number;
  analyzeMs: number;
  storeMs: number;
  /** gdb's own wall time within analyze (NaN when the job ran no gdb). */
  gdbMs: number;
  /** total − gdb − download: queue handling, symbols, parsing, result store. */
  overheadMs: number;
}

/** The finished jobs (a `job done` line) in a worker's log text. */
export function jobTimings(text: string): JobTiming[] {
  const names = new Map<string, string>();
  const gdb = new Map<string, number>();
  const done: Array<Record<string, number | string>> = [];
  for (const line of text.split("\n")) {
    if (line.includes('"msg":"Received coredump.uploaded"')) {
      const l = JSON.parse(line) as { analysis_id: string; file_name: string };
      names.set(l.analysis_id, l.file_name);
    } else if (line.includes('"msg":"analysis done"')) {
      const l = JSON.parse(line) as { analysis_id: string; gdb_ms?: number };
      if (typeof l.gdb_ms === "number") gdb.set(l.analysis_id, l.gdb_ms);
    } else if (line.includes('"msg":"job done"')) {
      done.push(JSON.parse(line) as Record<string, number | string>);
    }
  }
  return done.map((j) => {
    const id = String(j.analysis_id);
    const [totalMs, downloadMs] = [Number(j.total_ms), Number(j.download_ms)];
    const gdbMs = gdb.get(id) ?? NaN;
    return {
      analysisId: id,
      fileName: names.get(id) ?? null,
      totalMs,
      downloadMs,
      analyzeMs: Number(j.analyze_ms),
      storeMs: Number(j.store_ms),
      gdbMs,
      overheadMs: totalMs - (Number.isNaN(gdbMs) ? 0 : gdbMs) - downloadMs,
    };
  });
}
