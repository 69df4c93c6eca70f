/**
 * The whole path with real parts: CoreDog-shaped POSTs to a real API process
 * (`coresight-worker api`, the shipped binary), its outbox publishing to a
 * private nats-server with JetStream, a real worker process analyzing real
 * fixture cores from s3rver with gdb, its results PUT back to the API, and
 * the crash group read from GET /api/v1/groups. On SQLite and PostgreSQL.
 *
 * Outages are real too: nats-server stopped while reports arrive, and the
 * API process SIGKILLed right after answering 202.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { freePort } from "../../dev/port.js";
import { startNatsServer, type DevNatsServer } from "../helpers/natsServer.js";
import { startS3Server, type S3TestServer } from "../helpers/s3Server.js";
import { eventually, repoRoot, spawnWorker, type WorkerProcess } from "../helpers/workerProcess.js";
import { AGENT_TOKEN, DB_KINDS, READ_TOKEN, WORKER_TOKEN, agentEvent, apiEnv, call, databases, postAsAgent, type Databases } from "./helpers.js";

const BUCKET = "dumps";
const CORE = path.join(repoRoot, "build/fixtures/null-deref/core");

describe.each(DB_KINDS)("CoreDog → API → NATS → worker → API on %s", (kind) => {
  let dbs: Databases;
  let s3: S3TestServer;
  let tmp: string;
  const procs: WorkerProcess[] = [];
  const natsServers: DevNatsServer[] = [];
  let seq = 0;

  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-e2e-"));
    dbs = await databases(kind);
    s3 = await startS3Server();
    await s3.createBucket(BUCKET);
  });
  afterEach(async () => {
    for (const p of procs.splice(0)) {
      p.kill("SIGKILL");
      await p.exited;
    }
    for (const n of natsServers.splice(0)) await n.stop();
  });
  afterAll(async () => {
    await s3?.stop();
    await dbs?.stop();
    await fs.rm(tmp, { recursive: true, force: true });
  });

  /** One scenario: its own database, NATS server (restartable: fixed port, kept state), stream, consumer, API port. */
  async function scenario(name: string) {
    const id = `${name}${kind}${++seq}`;
    const dir = path.join(tmp, id);
    await fs.mkdir(dir, { recursive: true });
    const natsPort = await freePort();
    const natsDir = path.join(dir, "nats");
    await fs.mkdir(natsDir);
    const startNats = async () => {
      const n = await startNatsServer({ dir: natsDir, port: natsPort });
      natsServers.push(n);
      return n;
    };
    const apiPort = await freePort();
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const natsEnv = {
      NATS_URL: `nats://127.0.0.1:${natsPort}`,
      NATS_STREAM: `S_${id}`.toUpperCase(),
      NATS_SUBJECT: `coredog.${id}.uploaded`,
      NATS_CONSUMER: `c_${id}`,
    };
    const env = apiEnv(await dbs.fresh(id), { ...natsEnv, API_LISTEN: `127.0.0.1:${apiPort}`, LOG_LEVEL: "info", API_PUBLISH_TIMEOUT_MS: "1000" });
    const startApi = async () => {
      const p = spawnWorker(env, ["api"]);
      procs.push(p);
      await p.waitForLine((l) => l.msg === "CoreSight API listening", 30_000);
      return p;
    };
    const startWorker = async () => {
      const w = spawnWorker({
        ...natsEnv,
        NATS_ACK_WAIT_MS: "10000",
        NATS_BACKOFF_MS: "200",
        CORESIGHT_API_URL: apiUrl,
        CORESIGHT_API_TOKEN: WORKER_TOKEN,
        CORESIGHT_PUT_RUNNING: "true",
        RESULT_SINKS: "http",
        S3_ENDPOINT: s3.endpoint,
        S3_FORCE_PATH_STYLE: "true",
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        ALLOWED_DUMP_HOSTS: "127.0.0.1,localhost",
        WORK_DIR: path.join(dir, "work"),
        LOG_FILE: path.join(dir, "worker.log"),
        METRICS_PORT: "0",
        WORKER_CONCURRENCY: "1",
      });
      procs.push(w);
      await w.waitForLine((l) => l.msg === "waiting for coredump.uploaded events", 30_000);
      return w;
    };
    /** A report of the null-deref core uploaded under its own key, presigned as CoreDog does. */
    const report = async (n: number, pod: string) => {
      const key = `coredog/core.null-deref.${n}.${id}`;
      await s3.putFile(BUCKET, key, CORE);
      return agentEvent({ id: `coredog-1765567205-${n}`, fileUrl: await s3.presign(BUCKET, key, 3600), pod, node: `node-${n}` });
    };
    const analyses = async () =>
      (await call(apiUrl, "GET", "/api/v1/analyses?limit=100", { token: READ_TOKEN })).json.items as Array<{
        analysis_id: string;
        status: string;
        signature: { hash: string } | null;
      }>;
    const allCompleted = (ids: string[]) =>
      eventually(
        async () => {
          const items = await analyses().catch(() => []);
          const done = items.filter((a) => ids.includes(a.analysis_id) && a.status === "completed");
          return done.length === ids.length ? items : undefined;
        },
        90_000,
        `${ids.length} completed analyses`,
      );
    return { id, dir, apiUrl, startNats, startApi, startWorker, report, allCompleted };
  }

  it("the agent's POST to the bare root URL is analyzed by a real worker; the same crash from 3 pods is one group of 3", async () => {
    const sc = await scenario("agent");
    await sc.startNats();
    const api = await sc.startApi();
    await sc.startWorker();
    const ids: string[] = [];
    for (const [n, pod] of ["web-7d9f-a", "web-7d9f-b", "web-7d9f-c"].entries()) {
      const res = await postAsAgent(sc.apiUrl, await sc.report(n, pod));
      expect(res.status).toBe(202);
      expect(res.json).toEqual({ coredump_id: n + 1, analysis_id: expect.stringMatching(/^a-/), status: "queued" });
      ids.push(res.json.analysis_id);
    }
    const items = await sc.allCompleted(ids);
    const hashes = new Set(items.map((a) => a.signature?.hash));
    expect(hashes.size).toBe(1);
    const groups = await call(sc.apiUrl, "GET", "/api/v1/groups", { token: READ_TOKEN });
    expect(groups.status).toBe(200);
    expect(groups.json.items).toHaveLength(1);
    expect(groups.json.items[0]).toMatchObject({ count: 3, state: "ongoing", distinct: { pods: 3, namespaces: 1, nodes: 3 }, signature_hash: [...hashes][0] });
    const detail = await call(sc.apiUrl, "GET", `/api/v1/analyses/${ids[0]}`, { token: READ_TOKEN });
    expect(detail.json.result).toMatchObject({ status: "completed", signal: { name: "SIGSEGV" }, event: { coredump_id: 1, pod: "web-7d9f-a" } });
    const health = await call(sc.apiUrl, "GET", "/api/v1/health");
    expect(health).toMatchObject({ status: 200, json: { status: "ok", database: "ok", nats: "ok" } });
    // Neither the API's log nor its answers ever hold the agent's token.
    expect(JSON.stringify(api.lines)).not.toContain(AGENT_TOKEN);
    expect(JSON.stringify(detail.json)).not.toContain(AGENT_TOKEN);
  });

  it("NATS stopped during ingest: every report still gets 202 and is analyzed after NATS returns", async () => {
    const sc = await scenario("outage");
    const nats = await sc.startNats();
    await sc.startApi();
    // The outbox is connected (health ok) when NATS goes away.
    await eventually(async () => ((await call(sc.apiUrl, "GET", "/api/v1/health")).status === 200 ? true : undefined), 30_000, "API healthy");
    await nats.stop();
    const ids: string[] = [];
    for (let n = 0; n < 3; n++) {
      const res = await postAsAgent(sc.apiUrl, await sc.report(n, `pod-${n}`));
      expect(res.status).toBe(202);
      ids.push(res.json.analysis_id);
    }
    const down = await call(sc.apiUrl, "GET", "/api/v1/health");
    expect(down.status).toBe(503);
    expect(down.json.database).toBe("ok");
    expect(down.json.nats).not.toBe("ok");
    await sc.startNats();
    await sc.startWorker();
    await sc.allCompleted(ids);
  });

  it("the API SIGKILLed right after its 202s: nothing is lost after a restart", async () => {
    const sc = await scenario("sigkill");
    await sc.startNats();
    const api = await sc.startApi();
    const ids: string[] = [];
    const events = [];
    for (let n = 0; n < 4; n++) events.push(await sc.report(n, `pod-${n}`));
    for (const ev of events) {
      const res = await postAsAgent(sc.apiUrl, ev);
      expect(res.status).toBe(202);
      ids.push(res.json.analysis_id);
    }
    api.kill("SIGKILL");
    await api.exited;
    await sc.startApi();
    await sc.startWorker();
    const items = await sc.allCompleted(ids);
    // Each report analyzed once: one analysis per report, however often the outbox published.
    expect(items.filter((a) => ids.includes(a.analysis_id))).toHaveLength(4);
  });
});
