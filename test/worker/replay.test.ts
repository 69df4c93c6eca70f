/**
 * replayEvents against a private nats-server (JetStream) and s3rver: the
 * fixture event's local dump is uploaded, the published event carries a
 * presigned URL, md5 and file_size as CoreDog reports them, and Nats-Msg-Id
 * de-duplicates replays.
 */
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { GetObjectCommand } from "@aws-sdk/client-s3";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { loadConfig, type Config } from "../../lib/config.js";
import { createLogger } from "../../lib/log.js";
import { ensureQueue } from "../../worker/queue.js";
import { eventFiles, replayEvents, type ReplayOptions } from "../../worker/replay.js";
import { startNatsServer, type DevNatsServer } from "../helpers/natsServer.js";
import { repoRoot, startS3Server, type S3TestServer } from "../helpers/s3Server.js";

const ROOT = repoRoot();
const EVENT = path.join(ROOT, "fixtures/events/01-null-deref.json");
const CORE = path.join(ROOT, "build/fixtures/null-deref/core");
const BUCKET = "replay-dumps";

let nats: DevNatsServer;
let s3: S3TestServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let tmp: string;
let queueNo = 0;

beforeAll(async () => {
  try {
    await fs.access(CORE);
  } catch {
    throw new Error(`${path.relative(ROOT, CORE)} is missing: run \`bash scripts/build-fixtures.sh\` (make fixtures) first`);
  }
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-replay-test-"));
  nats = await startNatsServer();
  s3 = await startS3Server();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await s3?.stop();
  await nats?.stop();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

/** A new stream and subject per test, created the way the worker creates them. */
async function newQueue(): Promise<Config["nats"]> {
  const n = ++queueNo;
  const cfg = loadConfig({ NATS_URL: nats.url, NATS_STREAM: `REPLAY_${n}`, NATS_SUBJECT: `replay.${n}.uploaded`, NATS_CONSUMER: `replay-${n}` }).nats;
  await ensureQueue(nc, cfg, createLogger({ stdout: false }));
  return cfg;
}

function options(cfg: Config["nats"], extra: Partial<ReplayOptions> = {}): ReplayOptions & { lines: string[] } {
  const lines: string[] = [];
  return { nc, subject: cfg.subject, s3: s3.client, bucket: BUCKET, expiresSec: 600, log: (l) => lines.push(l), lines, ...extra };
}

async function stored(cfg: Config["nats"], seq: number): Promise<{ msgId: string | undefined; event: Record<string, unknown> & { data: Record<string, unknown> } }> {
  const m = await jsm.streams.getMessage(cfg.stream, { seq });
  if (!m) throw new Error(`no message ${seq} in ${cfg.stream}`);
  return { msgId: m.header?.get("Nats-Msg-Id"), event: m.json() };
}

async function md5(file: string): Promise<string> {
  return createHash("md5")
    .update(await fs.readFile(file))
    .digest("hex");
}

/** Writes an event whose dump is `fileUrl` (relative to the event file) into tmp. */
async function eventWithDump(name: string, fileUrl: string, data: Record<string, unknown> = {}): Promise<string> {
  const ev = JSON.parse(await fs.readFile(EVENT, "utf8")) as { id: string; data: Record<string, unknown> };
  ev.id = `${ev.id}-${name}`;
  Object.assign(ev.data, { file_url: fileUrl, file_name: `core.${name}` }, data);
  const file = path.join(tmp, `${name}.json`);
  await fs.writeFile(file, JSON.stringify(ev, null, 2));
  return file;
}

describe("replayEvents", () => {
  it("uploads the local dump and publishes the event with a presigned URL, md5 and file_size", async () => {
    const cfg = await newQueue();
    const opts = options(cfg);
    const [r, ...more] = await replayEvents([EVENT], opts);
    expect(more).toEqual([]);
    expect(r).toMatchObject({ file: EVENT, eventId: "coredog-1765567205-12341", fileName: "core.null-deref.4001.node-1.1765567205", duplicate: false });
    expect(r!.analysisId).toMatch(/^a-[0-9a-f]{32}$/);

    const { msgId, event } = await stored(cfg, 1);
    expect(msgId).toBe(r!.analysisId);
    const size = (await fs.stat(CORE)).size;
    expect(event.data.file_size).toBe(size);
    expect(event.data.md5).toBe(await md5(CORE));
    expect(event.data.file_name).toBe("core.null-deref.4001.node-1.1765567205");
    const url = new URL(String(event.data.file_url));
    expect(url.origin).toBe(s3.endpoint);
    expect(url.pathname).toBe(`/${BUCKET}/coredumps/core.null-deref.4001.node-1.1765567205`);
    expect(url.searchParams.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
    expect(url.searchParams.get("X-Amz-Expires")).toBe("600");
    // Everything else in the event is as CoreDog sent it.
    const original = JSON.parse(await fs.readFile(EVENT, "utf8")) as { data: Record<string, unknown> };
    for (const k of ["executable_path", "image", "pod_name", "pod_namespace", "node_name", "timestamp", "coredump_id"]) {
      expect([k, event.data[k]]).toEqual([k, original.data[k]]);
    }
    expect(event.type).toBe("coredog.coredump.uploaded");

    // The object behind the URL is the core, byte for byte, by URL and by GetObject.
    const core = await fs.readFile(CORE);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(core)).toBe(true);
    const obj = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "coredumps/core.null-deref.4001.node-1.1765567205" }));
    expect(Buffer.from(await obj.Body!.transformToByteArray()).equals(core)).toBe(true);

    expect(opts.lines.some((l) => l.startsWith("uploaded ") && l.includes(`s3://${BUCKET}/coredumps/`))).toBe(true);
    expect(opts.lines.some((l) => l.startsWith("published 01-null-deref.json") && l.includes(r!.analysisId))).toBe(true);
  });

  it("a second replay of the same event is a duplicate and is not queued again", async () => {
    const cfg = await newQueue();
    const [first] = await replayEvents([EVENT], options(cfg));
    const opts = options(cfg);
    const [second] = await replayEvents([EVENT], opts);
    expect(first!.duplicate).toBe(false);
    expect(second!.duplicate).toBe(true);
    expect(second!.analysisId).toBe(first!.analysisId);
    expect((await jsm.streams.info(cfg.stream)).state.messages).toBe(1);
    expect(opts.lines.some((l) => l.includes("(duplicate, not queued again)"))).toBe(true);
  });

  it("fresh: true gives a new event id and analysis id, so the event is queued again", async () => {
    const cfg = await newQueue();
    const [first] = await replayEvents([EVENT], options(cfg));
    const [again] = await replayEvents([EVENT], options(cfg, { fresh: true }));
    const [third] = await replayEvents([EVENT], options(cfg, { fresh: true }));
    expect(again!.duplicate).toBe(false);
    expect(again!.eventId).not.toBe(first!.eventId);
    expect(again!.eventId.startsWith(`${first!.eventId}-`)).toBe(true);
    expect(again!.analysisId).not.toBe(first!.analysisId);
    expect(third!.analysisId).not.toBe(again!.analysisId);
    expect((await jsm.streams.info(cfg.stream)).state.messages).toBe(3);
    const { msgId, event } = await stored(cfg, 2);
    expect(msgId).toBe(again!.analysisId);
    expect(event.id).toBe(again!.eventId);
  });

  it("fresh: true queues again an event whose analysis id was assigned", async () => {
    const cfg = await newQueue();
    const file = await eventWithDump("assigned", path.relative(tmp, CORE), { analysis_id: "an-assigned-id" });
    const [first] = await replayEvents([file], options(cfg));
    const [again] = await replayEvents([file], options(cfg, { fresh: true }));
    expect(first!.analysisId).toBe("an-assigned-id");
    // The analysis keeps the id CoreSight gave it; the message is new.
    expect(again!.analysisId).toBe("an-assigned-id");
    expect(again!.duplicate).toBe(false);
    expect((await jsm.streams.info(cfg.stream)).state.messages).toBe(2);
  });

  it("skipMissing skips an event whose dump is not here and publishes the rest", async () => {
    const cfg = await newQueue();
    const missing = await eventWithDump("missing", "no/such/core");
    const opts = options(cfg, { skipMissing: true });
    const out = await replayEvents([missing, EVENT], opts);
    expect(out.map((r) => r.file)).toEqual([EVENT]);
    expect(opts.lines).toContain("skipped missing.json: dump no/such/core was not built on this machine");
    expect((await jsm.streams.info(cfg.stream)).state.messages).toBe(1);
  });

  it("a missing dump without skipMissing throws naming the event file and the dump", async () => {
    const cfg = await newQueue();
    const missing = await eventWithDump("missing-strict", "no/such/core");
    await expect(replayEvents([missing], options(cfg))).rejects.toThrow(`${missing}: dump no/such/core not found`);
    expect((await jsm.streams.info(cfg.stream)).state.messages).toBe(0);
  });

  it("skipMissing skips a missing dump even without an S3 client", async () => {
    const cfg = await newQueue();
    const missing = await eventWithDump("missing-no-s3", "no/such/core");
    const out = await replayEvents([missing], options(cfg, { s3: null, skipMissing: true }));
    expect(out).toEqual([]);
  });

  it("a local dump without an S3 client throws saying what to configure", async () => {
    const cfg = await newQueue();
    await expect(replayEvents([EVENT], options(cfg, { s3: null }))).rejects.toThrow(/01-null-deref\.json: its dump is a local file; set S3_ENDPOINT/);
  });

  it("an event whose file_url is already a URL is published as is", async () => {
    const cfg = await newQueue();
    const url = "https://dumps.example.com/cores/core.1?X-Amz-Signature=abc";
    const file = await eventWithDump("remote", url, { md5: "0123456789abcdef0123456789abcdef", file_size: 42 });
    const [r] = await replayEvents([file], options(cfg, { s3: null }));
    expect(r!.duplicate).toBe(false);
    const { event } = await stored(cfg, 1);
    expect(event.data).toMatchObject({ file_url: url, md5: "0123456789abcdef0123456789abcdef", file_size: 42 });
  });

  it("a file that is not a valid event is an error naming the file, and nothing is published", async () => {
    const cfg = await newQueue();
    const notJson = path.join(tmp, "not-json.json");
    await fs.writeFile(notJson, "{ this is not json");
    await expect(replayEvents([notJson], options(cfg))).rejects.toThrow(notJson);
    const noType = path.join(tmp, "no-type.json");
    await fs.writeFile(noType, JSON.stringify({ id: "x", data: { file_url: "https://h/x" } }));
    await expect(replayEvents([noType], options(cfg, { s3: null }))).rejects.toThrow(noType);
    expect((await jsm.streams.info(cfg.stream)).state.messages).toBe(0);
  });
});

describe("eventFiles", () => {
  it("expands a directory into its sorted *.json files and keeps files as given", async () => {
    const dir = path.join(tmp, "events");
    await fs.mkdir(dir);
    for (const n of ["b.json", "a.json", "notes.txt", "c.json.bak"]) await fs.writeFile(path.join(dir, n), "{}");
    const single = path.join(tmp, "single.txt");
    await fs.writeFile(single, "{}");
    expect(await eventFiles([dir, single])).toEqual([path.join(dir, "a.json"), path.join(dir, "b.json"), single]);
  });

  it("lists the fixture events in order", async () => {
    const files = await eventFiles([path.join(ROOT, "fixtures/events")]);
    expect(files[0]).toBe(EVENT);
    expect(files.map((f) => path.basename(f))).toEqual([...files.map((f) => path.basename(f))].sort());
  });

  it("a missing input rejects naming it", async () => {
    await expect(eventFiles([path.join(tmp, "nope")])).rejects.toThrow(/nope/);
  });
});
