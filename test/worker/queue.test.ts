/**
 * The queue-driven pool against real servers: a private nats-server with
 * JetStream, s3rver on loopback, a real HTTP server as the CoreSight API,
 * real gdb on real fixture cores, and real worker processes (dist/).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { connect, headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { freePort } from "../../dev/port.js";
import { startNatsServer, type DevNatsServer } from "../helpers/natsServer.js";
import { startS3Server } from "../helpers/s3Server.js";
import { startApiServer } from "../helpers/apiServer.js";
import { coredumpEvent as event } from "../helpers/events.js";
import { publishRaw } from "../helpers/rawNats.js";
import { eventually, repoRoot, spawnWorker, type WorkerProcess, queueEnv, slowGdb, waitReady } from "../helpers/workerProcess.js";

type S3 = Awaited<ReturnType<typeof startS3Server>>;
type Api = Awaited<ReturnType<typeof startApiServer>>;

const TOKEN = "test-api-token";
const BUCKET = "dumps";
const CORES = ["null-deref", "multithread", "div-zero"].map((name) => ({ name, path: path.join(repoRoot, "build/fixtures", name, "core") }));

let nats: DevNatsServer;
let s3: S3;
let api: Api;
let nc: NatsConnection;
let tmp: string;
const urls = new Map<string, string>();
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-queue-test-"));
  nats = await startNatsServer();
  s3 = await startS3Server();
  api = await startApiServer({ token: TOKEN });
  nc = await connect({ servers: nats.url });
  await s3.createBucket(BUCKET);
  for (const c of CORES) {
    await s3.putFile(BUCKET, `cores/${c.name}.core`, c.path);
    urls.set(c.name, await s3.presign(BUCKET, `cores/${c.name}.core`, 3600));
  }
});

afterEach(async () => {
  for (const w of workers.splice(0)) {
    w.kill("SIGKILL");
    await w.exited;
  }
});

afterAll(async () => {
  await nc?.close();
  await api?.stop();
  await s3?.stop();
  await nats?.stop();
  await fs.rm(tmp, { recursive: true, force: true });
});

let seq = 0;
/** Unique stream/consumer/subject per test, and the worker environment. */
async function scenario(name: string, extra: Record<string, string> = {}) {
  const id = `${name}${++seq}`;
  const dir = path.join(tmp, id);
  await fs.mkdir(dir, { recursive: true });
  const env: Record<string, string> = {
    ...queueEnv(nats.url, id, dir),
    NATS_ACK_WAIT_MS: "4000",
    NATS_BACKOFF_MS: "200",
    CORESIGHT_API_URL: api.url,
    CORESIGHT_API_TOKEN: TOKEN,
    RESULT_SINKS: "http",
    RESULTS_DIR: path.join(dir, "results"),
    S3_ENDPOINT: s3.endpoint,
    S3_FORCE_PATH_STYLE: "true",
    AWS_ACCESS_KEY_ID: "S3RVER",
    AWS_SECRET_ACCESS_KEY: "S3RVER",
    ALLOWED_DUMP_HOSTS: "127.0.0.1,localhost",
    LOG_FILE: path.join(dir, "worker.log"),
    SHUTDOWN_GRACE_MS: "30000",
    ...extra,
  };
  const start = (more: Record<string, string> = {}) => {
    const w = spawnWorker({ ...env, ...more });
    workers.push(w);
    return w;
  };
  const ready = waitReady;
  const publish = async (body: string | object, hdrs: Record<string, string> = {}) => {
    const js = jetstream(nc);
    const h = natsHeaders();
    for (const [k, v] of Object.entries(hdrs)) h.set(k, v);
    await js.publish(env.NATS_SUBJECT!, typeof body === "string" ? body : JSON.stringify(body), { headers: h });
  };
  const consumerInfo = async () => (await jetstreamManager(nc)).consumers.info(env.NATS_STREAM!, env.NATS_CONSUMER!);
  return { id, dir, env, start, ready, publish, consumerInfo };
}

type Stored = { status: string; error?: { code: string; message: string }; signal?: { name: string } | null; crash_frame?: { function: string | null } | null };
const storedDocs = (): Array<[string, Stored[]]> => [...api.results.entries()].map(([k, v]) => [k, v as Stored[]]);
const docsFor = (prefix: string) => storedDocs().filter(([, docs]) => docs.some((d) => JSON.stringify(d).includes(prefix)));

const exists = (p: string) =>
  fs.access(p).then(
    () => true,
    () => undefined,
  );

/** Waits until the scenario's consumer has nothing pending and nothing unacknowledged. */
const allSettled = (sc: { consumerInfo: () => Promise<{ num_ack_pending: number; num_pending: number }> }) =>
  eventually(
    async () => {
      const info = await sc.consumerInfo();
      return info.num_ack_pending === 0 && info.num_pending === 0 ? info : undefined;
    },
    10_000,
    "all settled",
  );

describe("queue-driven worker pool", () => {
  it("a pool of two workers stores N results for N events, each exactly once, and logs every event", async () => {
    const sc = await scenario("pool", { RESULT_SINKS: "http,file,nats", RESULT_SUBJECT: "coresight.pooltest" });
    const natsResults: string[] = [];
    const sub = nc.subscribe("coresight.pooltest.>", { callback: (_e, m) => void natsResults.push(m.subject) });
    const a = sc.start();
    const b = sc.start();
    await Promise.all([sc.ready(a), sc.ready(b)]);
    const events = CORES.flatMap((c, i) => [
      event(`coredog-1765567205-${100 + i}`, urls.get(c.name)!, { file_name: `core.${c.name}.1.${sc.id}` }),
      // Same CoreDog id within the same second, different dump: must be a different analysis.
      event(`coredog-1765567205-${100 + i}`, urls.get(c.name)! + "&x-extra=1", { file_name: `core.${c.name}.2.${sc.id}`, pod_name: `pod-${sc.id}` }),
    ]);
    for (const ev of events) await sc.publish(ev);

    const received = () => [...a.lines, ...b.lines].filter((l) => l.msg === "Received coredump.uploaded");
    await eventually(() => (received().length >= events.length && docsFor(sc.id).length >= events.length ? true : undefined), 120_000, "all results");
    const mine = docsFor(sc.id);
    expect(mine).toHaveLength(events.length);
    for (const [, docs] of mine) {
      expect(docs).toHaveLength(1);
      expect(docs[0]!.status).toBe("completed");
    }
    const byCore = new Map(mine.map(([, d]) => [JSON.stringify(d[0]).match(/core\.([a-z-]+)\.\d/)![1], d[0]!]));
    expect(byCore.get("null-deref")!.signal!.name).toBe("SIGSEGV");
    expect(byCore.get("div-zero")!.signal!.name).toBe("SIGFPE");
    // The log file holds the operator's line once per event, and never the agent's token.
    const log = await fs.readFile(sc.env.LOG_FILE!, "utf8");
    expect(log.split("\n").filter((l) => l.includes('"msg":"Received coredump.uploaded"'))).toHaveLength(events.length);
    expect(log).not.toContain("agent-secret-token");
    expect(log).not.toContain("X-Amz-Signature=" + urls.get("null-deref")!.split("X-Amz-Signature=")[1]?.slice(0, 16));
    // The file and nats sinks got every result too. The sinks store in parallel, so the
    // API may have a result whose file is still being renamed into place: wait for them.
    const files = async () => (await fs.readdir(sc.env.RESULTS_DIR!)).filter((f) => f.endsWith(".json"));
    await eventually(async () => ((await files()).length >= events.length ? true : undefined), 10_000, "file results");
    expect(await files()).toHaveLength(events.length);
    await eventually(() => (natsResults.length >= events.length ? true : undefined), 10_000, "nats results");
    expect(natsResults.every((s) => s === "coresight.pooltest.completed")).toBe(true);
    sub.unsubscribe();
    // Every message is acked: nothing pending, nothing redelivered.
    await eventually(
      async () => {
        const info = await sc.consumerInfo();
        return info.num_ack_pending === 0 && info.num_pending === 0 ? info : undefined;
      },
      10_000,
      "consumer drained",
    );
  });

  it("DEDUP=on: the same crash again is stored as deduplicated_from the first analysis, a different crash is analyzed", async () => {
    const sc = await scenario("dedup", { DEDUP: "on", DEDUP_BUCKET: `dedup_${process.pid}_${seq}` });
    const w = sc.start();
    await sc.ready(w);
    type Doc = Stored & { analysis_id: string; deduplicated_from?: string; gdb: unknown; signature: { hash: string } | null };
    const stored = async (fileName: string) => {
      const [, docs] = await eventually(() => docsFor(fileName)[0], 60_000, `the result of ${fileName}`);
      return docs[0] as Doc;
    };
    await sc.publish(event("coredog-7-1", urls.get("null-deref")!, { file_name: `core.first.${sc.id}` }));
    const first = await stored(`core.first.${sc.id}`);
    await sc.publish(event("coredog-7-2", urls.get("null-deref")!, { file_name: `core.again.${sc.id}` }));
    const again = await stored(`core.again.${sc.id}`);
    await sc.publish(event("coredog-7-3", urls.get("div-zero")!, { file_name: `core.other.${sc.id}` }));
    const other = await stored(`core.other.${sc.id}`);
    expect(first).toMatchObject({ status: "completed" });
    expect(first.deduplicated_from).toBeUndefined();
    expect(again).toMatchObject({ status: "completed", deduplicated_from: first.analysis_id, gdb: null, signature: first.signature });
    expect(other.deduplicated_from).toBeUndefined();
    expect(other.gdb).not.toBeNull();
    expect(other.signal?.name).toBe("SIGFPE");
    await allSettled(sc);
  });

  it("a worker killed with SIGKILL during gdb: the message is redelivered to another worker and one result is stored", async () => {
    const sc = await scenario("kill");
    const slow = await slowGdb(sc.dir, 30);
    const victim = sc.start({ GDB_PATH: slow.gdb });
    await sc.ready(victim);
    await sc.publish(event("coredog-1-1", urls.get("null-deref")!, { file_name: `core.kill.${sc.id}` }));
    await eventually(() => exists(slow.marker), 30_000, "gdb to start in the victim");
    victim.kill("SIGKILL");
    await victim.exited;
    // gdb runs in its own process group (so the worker can kill it on
    // timeout) and dies with its worker (setpriv --pdeathsig, see
    // test/worker/startup.test.ts); the wrapper's sleep does not: end it.
    try {
      process.kill(-Number(await fs.readFile(slow.marker, "utf8")), "SIGKILL");
    } catch {
      // already gone
    }
    const rescuer = sc.start();
    const line = await rescuer.waitForLine((l) => l.msg === "Received coredump.uploaded", 60_000);
    expect(line.delivery_count).toBe(2);
    await eventually(() => (docsFor(sc.id).length === 1 ? true : undefined), 60_000, "the result");
    await new Promise((r) => setTimeout(r, 1000));
    const [[, docs]] = docsFor(sc.id) as [[string, Stored[]]];
    expect(docs).toHaveLength(1);
    expect(docs[0]!.status).toBe("completed");
  });

  it("the API answering 503 for a while: the result is stored after it recovers, and the message is acked only then", async () => {
    const sc = await scenario("api503");
    const w = sc.start();
    await sc.ready(w);
    api.failFor(5000, 503);
    await sc.publish(event("coredog-2-2", urls.get("null-deref")!, { file_name: `core.api.${sc.id}` }));
    const done = await w.waitForLine((l) => l.msg === "analysis done", 60_000);
    // The worker had a gdb waiting when the event came (GDB_PRESTART, the default), and the job's line says so.
    expect(done.gdb_prestarted).toBe(true);
    // Analysis is done but the API is down: the message is still unacknowledged.
    const during = await sc.consumerInfo();
    expect(docsFor(sc.id)).toHaveLength(0);
    expect(during.num_ack_pending).toBe(1);
    await eventually(() => (docsFor(sc.id).length === 1 ? true : undefined), 90_000, "the result after recovery");
    await eventually(async () => ((await sc.consumerInfo()).num_ack_pending === 0 ? true : undefined), 10_000, "the ack");
    // The worker kept trying during the outage: more than one PUT for this analysis.
    const analysisId = docsFor(sc.id)[0]![0];
    expect(api.requests.filter((r) => r.method === "PUT" && r.path.endsWith(`/${analysisId}`)).length).toBeGreaterThan(1);
  });

  it("poison JSON and a schema-violating event are terminated with a failed result, and the worker goes on", async () => {
    const sc = await scenario("poison");
    const w = sc.start();
    await sc.ready(w);
    await sc.publish(`{"not json": ${sc.id}`);
    await sc.publish({ specversion: "1.0", type: "coredog.coredump.uploaded", id: `bad-${sc.id}`, source: "coredog-agent", data: { pod_name: sc.id } });
    await sc.publish(event("coredog-3-3", urls.get("null-deref")!, { file_name: `core.after-poison.${sc.id}` }));
    await eventually(() => (docsFor(`core.after-poison.${sc.id}`).length === 1 ? true : undefined), 60_000, "the valid event's result");
    const invalid = storedDocs().filter(([id, d]) => id.startsWith("invalid-") && d[0]!.error?.code === "invalid_event");
    expect(invalid.length).toBeGreaterThanOrEqual(2);
    expect(invalid.some(([, d]) => /file_url/.test(d[0]!.error!.message))).toBe(true);
    await allSettled(sc);
    expect((await sc.consumerInfo()).num_redelivered).toBe(0);
    expect(w.child.exitCode).toBeNull();
  });

  it("a header value with a lone CR or LF cannot take down the pool: the message ends as invalid_event, terminated, both workers live on", async () => {
    const sc = await scenario("crlf", { NATS_ACK_WAIT_MS: "2000" });
    const a = sc.start();
    const b = sc.start();
    await Promise.all([sc.ready(a), sc.ready(b)]);
    const poison = event(`coredog-crlf-${sc.id}`, urls.get("null-deref")!, { file_name: `core.crlf.${sc.id}` });
    // The client refuses to build these headers: raw HPUB bytes, one lone \r and one lone \n.
    await publishRaw(nats.url, sc.env.NATS_SUBJECT!, ["X-Poison: a\rb", "CoreSight-Analysis-Id: x\ny"], JSON.stringify(poison));
    const stored = await eventually(() => docsFor(`core.crlf.${sc.id}`)[0], 60_000, "the poison message's result");
    expect(stored[1]).toHaveLength(1);
    expect(stored[1][0]).toMatchObject({ status: "failed", error: { code: "invalid_event" } });
    // Still alive past ack_wait: nobody meets the message again.
    await sc.publish(event("coredog-crlf-after", urls.get("div-zero")!, { file_name: `core.after-crlf.${sc.id}` }));
    await eventually(() => (docsFor(`core.after-crlf.${sc.id}`).length === 1 ? true : undefined), 60_000, "the next event's result");
    await allSettled(sc);
    expect((await sc.consumerInfo()).num_redelivered).toBe(0);
    expect(a.child.exitCode).toBeNull();
    expect(b.child.exitCode).toBeNull();
    expect(docsFor(`core.crlf.${sc.id}`)[0]![1]).toHaveLength(1);
  });

  it("an expired presigned URL with S3 credentials falls back to GetObject", async () => {
    const sc = await scenario("expired");
    const short = await s3.presign(BUCKET, "cores/null-deref.core", 1);
    await new Promise((r) => setTimeout(r, 2100));
    const w = sc.start();
    await sc.ready(w);
    await sc.publish(event("coredog-4-4", short, { file_name: `core.expired.${sc.id}` }));
    const dl = await w.waitForLine((l) => l.msg === "download done", 60_000);
    expect(dl.via).toBe("s3_get_object");
    await eventually(() => (docsFor(sc.id).length === 1 ? true : undefined), 60_000, "the result");
    expect(docsFor(sc.id)[0]![1][0]!.status).toBe("completed");
  });

  it("an oversize dump gives a failed result too_large and is acked", async () => {
    const sc = await scenario("large", { MAX_DUMP_BYTES: "4096" });
    const w = sc.start();
    await sc.ready(w);
    await sc.publish(event("coredog-5-5", urls.get("null-deref")!, { file_name: `core.large.${sc.id}` }));
    await eventually(() => (docsFor(sc.id).length === 1 ? true : undefined), 60_000, "the result");
    const doc = docsFor(sc.id)[0]![1][0]!;
    expect(doc.status).toBe("failed");
    expect(doc.error!.code).toBe("too_large");
    await eventually(async () => ((await sc.consumerInfo()).num_ack_pending === 0 ? true : undefined), 10_000, "the ack");
    expect(await fs.readdir(sc.env.WORK_DIR! + "/jobs").catch(() => [])).toHaveLength(0);
  });

  it("a dump that keeps failing transiently ends as retries_exhausted on the last delivery", async () => {
    const sc = await scenario("exhaust", { NATS_MAX_DELIVER: "2", NATS_BACKOFF_MS: "100" });
    const flaky = http.createServer((_req, res) => res.writeHead(503).end("busy"));
    await new Promise<void>((r) => flaky.listen(0, "127.0.0.1", () => r()));
    try {
      const w = sc.start();
      await sc.ready(w);
      const url = `http://127.0.0.1:${(flaky.address() as AddressInfo).port}/dumps/core.flaky.${sc.id}`;
      await sc.publish(event("coredog-6-6", url));
      await eventually(() => (docsFor(sc.id).length === 1 ? true : undefined), 60_000, "the result");
      const doc = docsFor(sc.id)[0]![1][0]!;
      expect(doc.status).toBe("failed");
      expect(doc.error!.code).toBe("retries_exhausted");
      expect(doc.error!.message).toMatch(/download_failed/);
      expect(w.lines.filter((l) => l.msg === "Received coredump.uploaded").map((l) => l.delivery_count)).toEqual([1, 2]);
    } finally {
      flaky.closeAllConnections();
      await new Promise((r) => flaky.close(r));
    }
  });

  it("serves /healthz, /readyz and /metrics that count what the worker did", async () => {
    const port = await freePort();
    const sc = await scenario("probes", { METRICS_PORT: String(port) });
    const w = sc.start();
    await sc.ready(w);
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true, failures: {} });
    // CoreSight's own job id rides on the message header: the result is stored under it.
    await sc.publish(event("coredog-9-9", urls.get("div-zero")!, { file_name: `core.probes.${sc.id}` }), { "CoreSight-Analysis-Id": `job-${sc.id}` });
    await eventually(() => (docsFor(sc.id).length === 1 ? true : undefined), 60_000, "the result");
    expect(docsFor(sc.id)[0]![0]).toBe(`job-${sc.id}`);
    const metrics = await eventually(
      async () => {
        const text = await (await fetch(`${base}/metrics`)).text();
        return /coresight_worker_messages_settled_total\{action="ack"\} 1/.test(text) ? text : undefined;
      },
      10_000,
      "the ack in /metrics",
    );
    expect(metrics).toMatch(/coresight_worker_messages_received_total 1/);
    expect(metrics).toMatch(/coresight_worker_results_total\{status="completed",error_code=""\} 1/);
    expect(metrics).toMatch(/coresight_worker_stage_duration_seconds_count\{stage="analyze"\} 1/);
    // gdb is a stage of its own (within analyze, which also prepares symbols).
    expect(metrics).toMatch(/coresight_worker_stage_duration_seconds_count\{stage="gdb"\} 1/);
    expect(metrics).toMatch(/coresight_worker_jobs_in_flight 0/);
  });

  it("SIGTERM drains: the in-flight job finishes, its result is stored, the worker exits 0", async () => {
    const sc = await scenario("drain");
    const slow = await slowGdb(sc.dir, 2);
    const w = sc.start({ GDB_PATH: slow.gdb });
    await sc.ready(w);
    await sc.publish(event("coredog-7-7", urls.get("null-deref")!, { file_name: `core.drain.${sc.id}` }));
    await eventually(() => exists(slow.marker), 30_000, "gdb to start");
    w.kill("SIGTERM");
    const exit = await w.exited;
    expect(exit.code).toBe(0);
    expect(docsFor(sc.id)).toHaveLength(1);
    expect(docsFor(sc.id)[0]![1][0]!.status).toBe("completed");
    expect((await sc.consumerInfo()).num_ack_pending).toBe(0);
  });

  it("SIGTERM past the grace period returns the message to the queue for another worker", async () => {
    const sc = await scenario("grace", { SHUTDOWN_GRACE_MS: "500" });
    const slow = await slowGdb(sc.dir, 30);
    const w = sc.start({ GDB_PATH: slow.gdb });
    await sc.ready(w);
    await sc.publish(event("coredog-8-8", urls.get("null-deref")!, { file_name: `core.grace.${sc.id}` }));
    await eventually(() => exists(slow.marker), 30_000, "gdb to start");
    w.kill("SIGTERM");
    expect((await w.exited).code).toBe(0);
    expect(docsFor(sc.id)).toHaveLength(0);
    const next = sc.start();
    const line = await next.waitForLine((l) => l.msg === "Received coredump.uploaded", 30_000);
    expect(line.delivery_count).toBe(2);
    await eventually(() => (docsFor(sc.id).length === 1 ? true : undefined), 60_000, "the result");
  });
});
