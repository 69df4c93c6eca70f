/**
 * `make demo`: the whole system on one machine, on embedded defaults.
 * Starts a private nats-server (JetStream) and an S3-protocol server on
 * loopback, a stand-in CoreSight API, and a pool of two worker processes;
 * replays fixtures/events (uploading each fixture core to S3, as CoreDog
 * does), waits for every result, prints a table, then stops all it started.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { loadConfig } from "../lib/config.js";
import { createLogger } from "../lib/log.js";
import { makeS3Client } from "../lib/storage/s3.js";
import { addToStore } from "../lib/symbols/add.js";
import { openSymbolStore } from "../lib/symbols/store.js";
import { startApiServer } from "./devApi.js";
import { startNatsServer } from "./devNats.js";
import { startS3Server } from "./devS3.js";
import { ensureQueue } from "./queue.js";
import { eventFiles, replayEvents } from "./replay.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const out = path.join(root, "demo-output");
const TOKEN = "demo-token";

interface StoredDoc {
  status: string;
  error?: { code: string; message: string };
  signal?: { name: string | null; code: string | null } | null;
  crash_frame?: { function: string | null; file: string | null; line: number | null; library: string | null } | null;
  signature?: { hash: string } | null;
  event?: { file_name?: string | null };
}

function pad(s: string, n: number): string {
  return s.length > n ? s.slice(0, n - 1) + "…" : s.padEnd(n);
}

async function main(): Promise<number> {
  const say = (s: string) => process.stdout.write(s + "\n");
  await fsp.rm(out, { recursive: true, force: true });
  await fsp.mkdir(out, { recursive: true });
  const stops: Array<[string, () => Promise<unknown>]> = [];
  const workers: ChildProcess[] = [];
  try {
    const nats = await startNatsServer();
    stops.push(["nats-server", () => nats.stop()]);
    const s3 = await startS3Server();
    stops.push(["s3 server", () => s3.stop()]);
    const api = await startApiServer({ token: TOKEN });
    stops.push(["api", () => api.stop()]);
    say(`nats-server ${nats.url} | S3 ${s3.endpoint} | CoreSight API (stand-in) ${api.url}`);

    const logFile = path.join(out, "worker.log");
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      NATS_URL: nats.url,
      CORESIGHT_API_URL: api.url,
      CORESIGHT_API_TOKEN: TOKEN,
      RESULT_SINKS: "http,file",
      RESULTS_DIR: path.join(out, "results"),
      S3_ENDPOINT: s3.endpoint,
      S3_FORCE_PATH_STYLE: "true",
      AWS_ACCESS_KEY_ID: "S3RVER",
      AWS_SECRET_ACCESS_KEY: "S3RVER",
      ALLOWED_DUMP_HOSTS: "127.0.0.1,localhost",
      WORK_DIR: path.join(out, "work"),
      LOG_FILE: logFile,
      METRICS_PORT: "0",
      WORKER_CONCURRENCY: "1",
      // The stripped fixture's symbols, uploaded by build-id as a CI pipeline
      // would (`coresight-worker symbols add`), so its frames get names.
      SYMBOL_STORE: "s3://symbols/store",
      SYMBOL_CACHE_DIR: path.join(out, "symbol-cache"),
    };
    const config = loadConfig(env);
    const s3client = makeS3Client(config.s3);
    await s3.createBucket("symbols");
    const unstripped = path.join(root, "build/fixtures/stripped/stripped.full");
    if (fs.existsSync(unstripped)) {
      const added = await addToStore([unstripped], openSymbolStore(env.SYMBOL_STORE!, s3client));
      say(`symbol store ${env.SYMBOL_STORE}: added ${added.length} file(s) for build/fixtures/stripped`);
    }
    // Create the stream before the workers race to.
    const nc = await connect({ servers: nats.url });
    stops.unshift(["replay connection", () => nc.drain()]);
    await ensureQueue(nc, config.nats, createLogger({ level: "warn", stdout: false }));

    const cli = path.join(root, "dist/worker/cli.js");
    for (let i = 0; i < 2; i++) {
      const child = spawn(process.execPath, [cli, "run"], { env, stdio: ["ignore", "ignore", "inherit"] });
      workers.push(child);
    }
    stops.unshift([
      "workers",
      async () => {
        await Promise.all(
          workers.map(
            (w) =>
              new Promise<void>((resolve) => {
                if (w.exitCode !== null) return resolve();
                w.once("exit", () => resolve());
                w.kill("SIGTERM");
              }),
          ),
        );
      },
    ]);
    say(`pool of ${workers.length} workers started (pids ${workers.map((w) => w.pid).join(", ")})`);

    const files = await eventFiles([path.join(root, "fixtures/events")]);
    const started = Date.now();
    const replayed = await replayEvents(files, {
      nc,
      subject: config.nats.subject,
      s3: s3client,
      bucket: "coredumps",
      expiresSec: 3600,
      skipMissing: true,
      log: say,
    });
    const deadline = Date.now() + 300_000;
    while ([...replayed].some((r) => !api.results.has(r.analysisId))) {
      if (Date.now() > deadline) throw new Error("timed out waiting for results");
      if (workers.every((w) => w.exitCode !== null)) throw new Error("every worker exited; see " + logFile);
      await new Promise((r) => setTimeout(r, 200));
    }
    const wall = (Date.now() - started) / 1000;

    const jobSeconds = new Map<string, number>();
    for (const line of (await fsp.readFile(logFile, "utf8")).split("\n")) {
      if (!line.includes('"job done"')) continue;
      const l = JSON.parse(line) as { analysis_id: string; total_ms: number };
      jobSeconds.set(l.analysis_id, l.total_ms / 1000);
    }
    say("");
    say(`${pad("event", 30)} ${pad("signal", 22)} ${pad("crash frame", 44)} ${pad("signature", 16)} seconds`);
    say("-".repeat(124));
    for (const r of replayed) {
      const docs = api.results.get(r.analysisId) as StoredDoc[];
      const d = docs[docs.length - 1]!;
      const f = d.crash_frame;
      const where = f ? `${f.function ?? "??"}${f.file ? ` ${path.basename(f.file)}:${f.line ?? "?"}` : f.library ? ` (${path.basename(f.library)})` : ""}` : "-";
      const signal = d.status === "failed" ? `FAILED ${d.error?.code}` : `${d.signal?.name ?? "-"} ${d.signal?.code ?? ""}`;
      say(
        `${pad(r.fileName ?? path.basename(r.file), 30)} ${pad(signal, 22)} ${pad(where, 44)} ${pad(d.signature?.hash ?? "-", 16)} ${(jobSeconds.get(r.analysisId) ?? 0).toFixed(2)}`,
      );
    }
    const received = (await fsp.readFile(logFile, "utf8")).split("\n").filter((l) => l.includes('"msg":"Received coredump.uploaded"')).length;
    say("");
    say(`${replayed.length} events, ${replayed.length} results in ${wall.toFixed(1)} s; "Received coredump.uploaded" logged ${received} times`);
    say(`worker.log: ${path.relative(process.cwd(), logFile) || logFile}   (tail -f ${path.relative(process.cwd(), logFile)} | grep "Received coredump.uploaded")`);
    say(`results:    ${path.relative(process.cwd(), path.join(out, "results"))}/<analysis_id>.json`);
    return 0;
  } finally {
    for (const [name, stop] of stops) {
      try {
        await stop();
      } catch (e: unknown) {
        process.stderr.write(`demo: stopping ${name} failed: ${(e as Error).message}\n`);
      }
    }
    if (fs.existsSync(path.join(out, "work"))) await fsp.rm(path.join(out, "work"), { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`demo failed: ${(e as Error).stack}\n`);
    process.exitCode = 1;
  },
);
