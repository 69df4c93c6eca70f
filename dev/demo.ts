/**
 * `make demo`: the whole system on one machine, on embedded defaults.
 * Starts a private nats-server (JetStream) and an S3-protocol server on
 * loopback, the real CoreSight API (`coresight-worker api`, SQLite in
 * demo-output/), and a pool of two worker processes; uploads each fixture
 * core to S3 and POSTs its report to the API root as CoreDog does, waits for
 * every result, prints a result table and the crash groups, then stops all
 * it started.
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
import { startNatsServer } from "./nats.js";
import { freePort } from "./port.js";
import { startS3Server } from "./s3.js";
import { ensureQueue } from "../worker/queue.js";
import { eventFiles, replayEvents } from "../worker/replay.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const out = path.join(root, "demo-output");
/** The integration guide's example agent token (the fixture events carry it too). */
const AGENT_TOKEN = "kULT1AKXMu4xxnPNo5fSCW7J5LXx7llJgLh45PCuxOg";
const WORKER_TOKEN = "demo-worker-token-0123456789";

interface StoredDoc {
  status: string;
  error?: { code: string; message: string };
  signal?: { name: string | null; code: string | null } | null;
  crash_frame?: { function: string | null; file: string | null; line: number | null; library: string | null } | null;
  signature?: { hash: string } | null;
  event?: { file_name?: string | null };
}

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${WORKER_TOKEN}` } });
  return { status: res.status, body: (await res.json().catch(() => null)) as unknown };
}

/** Starts `coresight-worker api` and waits until its health check says the database and NATS are fine. */
async function startApi(cli: string, env: Record<string, string>, url: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [cli, "api"], { env, stdio: ["ignore", "ignore", "inherit"] });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the CoreSight API exited with ${child.exitCode}; see ${env.LOG_FILE}`);
    const h = await fetch(`${url}/api/v1/health`).catch(() => null);
    if (h?.status === 200) return child;
    if (Date.now() > deadline) throw new Error(`the CoreSight API did not become healthy: ${h ? await h.text() : "no answer"}`);
    await new Promise((r) => setTimeout(r, 100));
  }
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
    const cli = path.join(root, "dist/bundle/cli.js");
    const apiUrl = `http://127.0.0.1:${await freePort()}`;
    const apiChild = await startApi(
      cli,
      {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "/tmp",
        API_LISTEN: new URL(apiUrl).host,
        DATABASE_URL: `sqlite:${path.join(out, "coresight.db")}`,
        NATS_URL: nats.url,
        CORESIGHT_AGENT_TOKENS: AGENT_TOKEN,
        CORESIGHT_WORKER_TOKENS: WORKER_TOKEN,
        LOG_FILE: path.join(out, "api.log"),
        LOG_LEVEL: "warn",
      },
      apiUrl,
    );
    stops.push([
      "api",
      () =>
        new Promise<void>((resolve) => {
          if (apiChild.exitCode !== null) return resolve();
          apiChild.once("exit", () => resolve());
          apiChild.kill("SIGTERM");
        }),
    ]);
    say(`nats-server ${nats.url} | S3 ${s3.endpoint} | CoreSight API ${apiUrl} (SQLite demo-output/coresight.db)`);

    const logFile = path.join(out, "worker.log");
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      NATS_URL: nats.url,
      CORESIGHT_API_URL: apiUrl,
      CORESIGHT_API_TOKEN: WORKER_TOKEN,
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
    const s3client = await makeS3Client(config.s3);
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
    // Each report goes to the API root exactly as CoreDog posts it; the API commits it and queues it.
    const send = async (body: string) => {
      const res = await fetch(apiUrl, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${AGENT_TOKEN}` }, body });
      const answer = (await res.json().catch(() => null)) as { coredump_id?: number; analysis_id?: string } | null;
      if (!res.ok || !answer?.analysis_id) throw new Error(`the CoreSight API answered ${res.status}: ${JSON.stringify(answer)}`);
      return { analysisId: answer.analysis_id, duplicate: res.status === 200, note: `${res.status} coredump_id ${answer.coredump_id} analysis ${answer.analysis_id}` };
    };
    const replayed = await replayEvents(files, {
      send,
      subject: config.nats.subject,
      s3: s3client,
      bucket: "coredumps",
      expiresSec: 3600,
      skipMissing: true,
      log: say,
    });
    const results = new Map<string, StoredDoc>();
    const deadline = Date.now() + 300_000;
    while (replayed.some((r) => !results.has(r.analysisId))) {
      if (Date.now() > deadline) throw new Error("timed out waiting for results");
      if (workers.every((w) => w.exitCode !== null)) throw new Error("every worker exited; see " + logFile);
      for (const r of replayed.filter((x) => !results.has(x.analysisId))) {
        const got = await getJson(`${apiUrl}/api/v1/analyses/${r.analysisId}`);
        const a = got.body as { status?: string; result?: StoredDoc | null } | null;
        if ((a?.status === "completed" || a?.status === "failed") && a.result) results.set(r.analysisId, a.result);
      }
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
      const d = results.get(r.analysisId)!;
      const f = d.crash_frame;
      const where = f ? `${f.function ?? "??"}${f.file ? ` ${path.basename(f.file)}:${f.line ?? "?"}` : f.library ? ` (${path.basename(f.library)})` : ""}` : "-";
      const signal = d.status === "failed" ? `FAILED ${d.error?.code}` : `${d.signal?.name ?? "-"} ${d.signal?.code ?? ""}`;
      say(
        `${pad(r.fileName ?? path.basename(r.file), 30)} ${pad(signal, 22)} ${pad(where, 44)} ${pad(d.signature?.hash ?? "-", 16)} ${(jobSeconds.get(r.analysisId) ?? 0).toFixed(2)}`,
      );
    }
    const groups = (await getJson(`${apiUrl}/api/v1/groups?limit=100`)).body as {
      items: Array<{ signature_hash: string; state: string; count: number; distinct: { pods: number }; signature_text: string }>;
    };
    say("");
    say(`crash groups (GET ${apiUrl}/api/v1/groups):`);
    say(`${pad("signature hash", 17)} ${pad("state", 9)} ${pad("count", 6)} ${pad("pods", 5)} signature`);
    say("-".repeat(124));
    for (const g of groups.items)
      say(`${pad(g.signature_hash, 17)} ${pad(g.state, 9)} ${pad(String(g.count), 6)} ${pad(String(g.distinct.pods), 5)} ${g.signature_text.slice(0, 84)}`);
    const received = (await fsp.readFile(logFile, "utf8")).split("\n").filter((l) => l.includes('"msg":"Received coredump.uploaded"')).length;
    say("");
    say(`${replayed.length} events, ${replayed.length} results in ${wall.toFixed(1)} s; "Received coredump.uploaded" logged ${received} times`);
    say(`worker.log: ${path.relative(process.cwd(), logFile) || logFile}   (tail -f ${path.relative(process.cwd(), logFile)} | grep "Received coredump.uploaded")`);
    say(`results:    ${path.relative(process.cwd(), path.join(out, "results"))}/<analysis_id>.json`);
    say(
      `crash browser: ${apiUrl}/ui/groups  (up while the demo runs; afterwards: DATABASE_URL=sqlite:demo-output/coresight.db CORESIGHT_READ_TOKENS=<token> node dist/bundle/cli.js api, then http://127.0.0.1:8000/ui/groups)`,
    );
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
