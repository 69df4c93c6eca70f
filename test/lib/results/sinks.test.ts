/** createSinks: every configured sink gets the document; failures combine by class. */
import { afterEach, beforeEach, describe, expect, it } from "@jest/globals";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { PermanentError, TransientError } from "../../../lib/errors.js";
import { createSinks, type SinksConfig } from "../../../lib/results/sinks.js";
import { startApiServer, type DevApiServer } from "../../helpers/apiServer.js";
import { captureLogger, recordingSleep, sampleDoc } from "./fixtures.js";

const TOKEN = "sinks-test-token";
let api: DevApiServer;
let tmp: string;
beforeEach(async () => {
  api = await startApiServer({ token: TOKEN });
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-sinks-"));
});
afterEach(async () => {
  await api.stop();
  await fs.rm(tmp, { recursive: true, force: true });
});

function config(sinks: SinksConfig["sinks"], putRunning = false): SinksConfig {
  return {
    sinks,
    api: { url: api.url, token: TOKEN, timeoutMs: 5000, putRunning, retry: { maxAttempts: 2 } },
    resultsDir: path.join(tmp, "results"),
    natsSubject: "coresight.analysis",
    natsRetry: { maxAttempts: 1 },
  };
}

function publisher(fail = false) {
  const subjects: string[] = [];
  const publish = async (subject: string) => {
    if (fail) throw new Error("nats down");
    subjects.push(subject);
  };
  return { publish, subjects };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error("expected a rejection");
    },
    (e: unknown) => e as Error,
  );
}

describe("createSinks", () => {
  it("stores in every configured sink before it resolves", async () => {
    const pub = publisher();
    const store = createSinks(config(["http", "file", "nats"]), { publish: pub.publish });
    expect(store.sinks).toEqual(["http", "file", "nats"]);
    const { id, doc } = sampleDoc();
    await store.store(id, doc, { status: "completed" });
    expect(api.results.get(id)).toHaveLength(1);
    expect(JSON.parse(await fs.readFile(path.join(tmp, "results", `${id}.json`), "utf8")).analysis_id).toBe(id);
    expect(pub.subjects).toEqual(["coresight.analysis.completed"]);
  });

  it("one sink failing transiently: TransientError, the others still stored (they store again on redelivery)", async () => {
    api.failFor(60_000, 503);
    const store = createSinks(config(["http", "file"]), { sleep: recordingSleep().sleep });
    const { id, doc } = sampleDoc();
    const err = await rejection(store.store(id, doc, { status: "completed" }));
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).code).toBe("result_store_failed");
    await expect(fs.access(path.join(tmp, "results", `${id}.json`))).resolves.toBeUndefined();
  });

  it("a permanent failure wins over transient ones, and the message names every failed sink", async () => {
    api.failFor(60_000, 400);
    const pub = publisher(true);
    const store = createSinks(config(["http", "file", "nats"]), { publish: pub.publish, sleep: recordingSleep().sleep });
    const { id, doc } = sampleDoc();
    const err = await rejection(store.store(id, doc, { status: "completed" }));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).code).toBe("result_rejected");
    expect(err.message).toMatch(/http sink: .*HTTP 400.*; nats sink: .*nats down/);
  });

  it("several transient failures keep the longest Retry-After", async () => {
    api.failNext(1, 503, "", { "retry-after": "90" });
    const store = createSinks(config(["http", "nats"]), { publish: publisher(true).publish, sleep: recordingSleep().sleep });
    const { id, doc } = sampleDoc();
    const err = await rejection(store.store(id, doc, { status: "completed" }));
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).retryAfterMs).toBe(90_000);
  });

  it("refuses an analysis_id that is not safe as a path segment and file name, before any sink runs", async () => {
    const store = createSinks(config(["http", "file"]));
    const { doc } = sampleDoc();
    for (const bad of ["../x", "a/b", "", ".", "x".repeat(129), "a b"]) {
      const err = await rejection(store.store(bad, doc, { status: "completed" }));
      expect(err).toBeInstanceOf(PermanentError);
    }
    expect(api.requests).toHaveLength(0);
    await expect(fs.access(path.join(tmp, "results"))).rejects.toThrow();
  });

  it("markRunning goes to the http sink only when enabled, and never throws", async () => {
    const log = captureLogger();
    const { id, doc } = sampleDoc();
    await createSinks(config(["http", "file"], false)).markRunning(id, doc.event);
    expect(api.requests).toHaveLength(0);
    const store = createSinks(config(["http", "file"], true), { logger: log.logger });
    await store.markRunning(id, doc.event);
    expect(api.running.has(id)).toBe(true);
    api.failNext(1, 500);
    await expect(store.markRunning(id, doc.event)).resolves.toBeUndefined();
    expect(log.lines().some((l) => l.msg === "running status not accepted" && l.status === 500)).toBe(true);
  });

  it("rejects configurations that cannot work", () => {
    expect(() => createSinks({ ...config([]) })).toThrow(/no result sink/);
    expect(() => createSinks({ ...config(["http"]), api: undefined })).toThrow(/CORESIGHT_API_URL/);
    expect(() => createSinks(config(["nats"]))).toThrow(/publish function/);
    expect(() => createSinks(config(["s3" as never]))).toThrow(/unknown sink "s3"/);
  });
});
