/**
 * No message is ever stranded: real worker processes SIGKILLed while they
 * hold a message, on every allowed delivery including the last, against a
 * private nats-server. The next worker must still get it, store
 * `retries_exhausted` without running the job again, and ack it, leaving
 * nothing in the stream. (With the server's max_deliver equal to the
 * worker's NATS_MAX_DELIVER, the last delivery of a dead worker was never
 * redelivered and sat in the work-queue stream forever.)
 *
 * Also: the nats sink's results are persisted by a JetStream stream.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { startApiServer, type DevApiServer } from "../helpers/apiServer.js";
import { startNatsServer, type DevNatsServer } from "../helpers/natsServer.js";
import { coredumpEvent } from "../helpers/events.js";
import { eventually, spawnWorker, type WorkerProcess, queueEnv, waitReady } from "../helpers/workerProcess.js";

const TOKEN = "stranded-test-token";
let nats: DevNatsServer;
let api: DevApiServer;
let nc: NatsConnection;
let tmp: string;
/** A dump server that sends headers and a few bytes, then never finishes: the worker holds the message until killed. */
let hanging: http.Server;
let hangingUrl: string;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-stranded-"));
  nats = await startNatsServer();
  api = await startApiServer({ token: TOKEN });
  nc = await connect({ servers: nats.url });
  hanging = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(1 << 20) });
    res.write(Buffer.from("\x7fELF"));
  });
  await new Promise<void>((r) => hanging.listen(0, "127.0.0.1", () => r()));
  hangingUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/dumps/core.hang`;
});

afterEach(async () => {
  for (const w of workers.splice(0)) {
    w.kill("SIGKILL");
    await w.exited;
  }
});

afterAll(async () => {
  hanging?.closeAllConnections();
  await new Promise((r) => hanging?.close(r));
  await nc?.close();
  await api?.stop();
  await nats?.stop();
  await fs.rm(tmp, { recursive: true, force: true });
});

function env(id: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...queueEnv(nats.url, id, path.join(tmp, id)),
    NATS_ACK_WAIT_MS: "1500",
    NATS_MAX_DELIVER: "2",
    NATS_BACKOFF_MS: "100",
    CORESIGHT_API_URL: api.url,
    CORESIGHT_API_TOKEN: TOKEN,
    RESULT_SINKS: "http",
    ALLOWED_DUMP_HOSTS: "127.0.0.1",
    LOG_FILE: path.join(tmp, id, "worker.log"),
    ...extra,
  };
}

const received = (w: WorkerProcess, delivery: number) => w.waitForLine((l) => l.msg === "Received coredump.uploaded" && l.delivery_count === delivery, 30_000);
const ready = waitReady;
type Stored = { status: string; error?: { code: string; message: string } };
const docsFor = (id: string) => [...api.results.entries()].filter(([, docs]) => JSON.stringify(docs).includes(`pod-${id}`)).map(([, d]) => d as Stored[]);

describe("a message whose holder dies on every allowed delivery", () => {
  it("SIGKILL on deliveries 1 and 2 of NATS_MAX_DELIVER=2: delivery 3 stores retries_exhausted, acks, and the stream is empty", async () => {
    const id = "strand1";
    const e = env(id);
    const first = spawnWorker(e);
    workers.push(first);
    await ready(first);
    await jetstream(nc).publish(e.NATS_SUBJECT!, JSON.stringify(coredumpEvent(id, hangingUrl, { pod_name: `pod-${id}` })));

    await received(first, 1);
    first.kill("SIGKILL");
    await first.exited;

    // The last allowed delivery, and its holder dies too.
    const second = spawnWorker(e);
    workers.push(second);
    await received(second, 2);
    second.kill("SIGKILL");
    await second.exited;

    const third = spawnWorker(e);
    workers.push(third);
    const line = await received(third, 3);
    await eventually(() => (docsFor(id).length === 1 ? true : undefined), 30_000, "the retries_exhausted result");
    const [docs] = docsFor(id);
    expect(docs).toHaveLength(1);
    expect(docs![0]!.status).toBe("failed");
    expect(docs![0]!.error!.code).toBe("retries_exhausted");
    expect(docs![0]!.error!.message).toMatch(/stopped without settling it/);
    // Not run again: no download was started on delivery 3.
    expect(third.lines.some((l) => l.msg === "download started" && l.analysis_id === line.analysis_id)).toBe(false);

    const jsm = await jetstreamManager(nc);
    await eventually(async () => ((await jsm.streams.info(e.NATS_STREAM!)).state.messages === 0 ? true : undefined), 15_000, "an empty work-queue stream");
    const info = await jsm.consumers.info(e.NATS_STREAM!, e.NATS_CONSUMER!);
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_pending).toBe(0);
    // The server itself sets no delivery limit.
    expect(info.config.max_deliver).toBe(-1);
  });
  // An existing consumer with a server max_deliver: `run` warns and leaves it, `queue apply`
  // aligns it to no server limit (test/worker/startup.test.ts, "run warns on drift").
});

describe("the nats sink", () => {
  it("stores through JetStream: the result is in the result stream, once, after a redelivery too", async () => {
    const id = "natsink1";
    const e = env(id, { RESULT_SINKS: "http,nats", RESULT_SUBJECT: `coresight.${id}`, NATS_RESULT_STREAM: `R_${id}`.toUpperCase() });
    const w = spawnWorker(e);
    workers.push(w);
    await ready(w);
    const bad = "not json at all";
    await jetstream(nc).publish(e.NATS_SUBJECT!, bad);
    await jetstream(nc).publish(e.NATS_SUBJECT!, bad, { msgID: "second-copy" });
    const jsm = await jetstreamManager(nc);
    await eventually(async () => ((await jsm.streams.info(e.NATS_STREAM!)).state.messages === 0 ? true : undefined), 30_000, "both events settled");
    const stream = await jsm.streams.info(`R_${id}`.toUpperCase());
    expect(stream.config.subjects).toEqual([`coresight.${id}.>`]);
    // Two deliveries of the same invalid bytes: one analysis id, one stored event (Nats-Msg-Id de-duplicates).
    expect(stream.state.messages).toBe(1);
    const m = await jsm.streams.getMessage(`R_${id}`.toUpperCase(), { last_by_subj: `coresight.${id}.failed` });
    expect(m?.json<{ type: string; data: { status: string; error: { code: string } } }>()).toMatchObject({
      type: "coresight.analysis.failed",
      data: { status: "failed", error: { code: "invalid_event" } },
    });
  });
});
