/**
 * The http sink against a real HTTP server (the stand-in CoreSight API):
 * status semantics, bounded retries with Retry-After, timeouts, the running PUT.
 */
import { afterEach, beforeEach, describe, expect, it } from "@jest/globals";
import { PermanentError, TransientError } from "../../../lib/errors.js";
import { createHttpSink, type HttpSinkOptions } from "../../../lib/results/http.js";
import { createSinks } from "../../../lib/results/sinks.js";
import { startApiServer, type DevApiServer } from "../../helpers/apiServer.js";
import { AGENT_TOKEN, captureLogger, recordingSleep, sampleDoc } from "./fixtures.js";

const TOKEN = "api-secret-token-7f3a9c";

let api: DevApiServer;
beforeEach(async () => {
  api = await startApiServer({ token: TOKEN });
});
afterEach(async () => {
  await api.stop();
});

function sink(over: Partial<HttpSinkOptions> = {}) {
  const log = captureLogger();
  const rec = recordingSleep();
  const s = createHttpSink({ url: api.url, token: TOKEN, timeoutMs: 5000, putRunning: false, ...over }, { logger: log.logger, sleep: rec.sleep, random: () => 0.5 });
  return { s, log, delays: rec.delays };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e: unknown) {
    return e as Error;
  }
  throw new Error("expected a rejection");
}

const puts = () => api.requests.filter((r) => r.method === "PUT");

describe("http sink", () => {
  it("PUTs the document to /api/v1/analyses/{analysis_id} with the bearer token", async () => {
    const { s, log } = sink();
    const { id, doc } = sampleDoc();
    await s.store(id, doc, { status: "completed" });
    expect(api.results.get(id)).toEqual([JSON.parse(JSON.stringify(doc))]);
    const [req] = puts();
    expect(req!.path).toBe(`/api/v1/analyses/${id}`);
    expect(req!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(req!.headers["content-type"]).toBe("application/json");
    expect(req!.headers["idempotency-key"]).toBe(id);
    // Stored again (a redelivery): idempotent by path, the API replaces it.
    await s.store(id, doc, { status: "completed" });
    expect(api.results.get(id)).toHaveLength(2);
    expect(log.text()).not.toContain(TOKEN);
  });

  it("treats 409 (a result already stored) as stored", async () => {
    api.setHandler((req, res) => {
      if (req.method !== "PUT") return false;
      res.writeHead(409, { "content-type": "application/json" }).end('{"error":"conflict"}');
      return true;
    });
    const { s, delays } = sink();
    const { id, doc } = sampleDoc();
    await expect(s.store(id, doc, { status: "completed" })).resolves.toBeUndefined();
    expect(puts()).toHaveLength(1);
    expect(delays).toEqual([]);
  });

  it("retries 503 with backoff and jitter, and stores once the API answers", async () => {
    api.failNext(2, 503, "maintenance");
    const { s, delays, log } = sink({ retry: { baseMs: 1000, maxMs: 10_000 } });
    const { id, doc } = sampleDoc();
    await s.store(id, doc, { status: "completed" });
    expect(api.results.get(id)).toHaveLength(1);
    expect(puts()).toHaveLength(3);
    // Equal jitter at random()=0.5: 3/4 of 1 s, then of 2 s.
    expect(delays).toEqual([750, 1500]);
    const retries = log.lines().filter((l) => l.msg === "result PUT failed; retrying");
    expect(retries.map((l) => l.err)).toEqual(["HTTP 503: maintenance", "HTTP 503: maintenance"]);
  });

  it("gives up after the attempt limit with TransientError(result_store_failed), leaving the message to the queue", async () => {
    api.failFor(60_000, 503);
    const { s, delays } = sink({ retry: { maxAttempts: 4, maxWaitMs: 30_000, baseMs: 1000, maxMs: 10_000 } });
    const { id, doc } = sampleDoc();
    const err = await rejection(s.store(id, doc, { status: "completed" }));
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).code).toBe("result_store_failed");
    expect(err.message).toMatch(/\(after 4 attempts\): HTTP 503/);
    expect(puts()).toHaveLength(4);
    expect(delays).toHaveLength(3);
    expect(api.results.has(id)).toBe(false);
  });

  it("bounds the total wait: stops when the next backoff exceeds the budget", async () => {
    api.failFor(60_000, 502);
    const { s, delays } = sink({ retry: { maxAttempts: 100, maxWaitMs: 5000, baseMs: 1000, maxMs: 10_000 } });
    const { id, doc } = sampleDoc();
    await expect(s.store(id, doc, { status: "completed" })).rejects.toBeInstanceOf(TransientError);
    expect(delays.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(5000);
    expect(delays.length).toBeLessThan(10);
  });

  it("honours Retry-After (seconds) on 429", async () => {
    api.failNext(1, 429, "slow down", { "retry-after": "7" });
    const { s, delays } = sink();
    const { id, doc } = sampleDoc();
    await s.store(id, doc, { status: "completed" });
    expect(delays).toEqual([7000]);
    expect(api.results.get(id)).toHaveLength(1);
  });

  it("hands a Retry-After beyond the budget back to the consumer as retryAfterMs, without waiting", async () => {
    api.failNext(1, 503, "", { "retry-after": "120" });
    const { s, delays } = sink();
    const { id, doc } = sampleDoc();
    const err = await rejection(s.store(id, doc, { status: "completed" }));
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).retryAfterMs).toBe(120_000);
    expect(delays).toEqual([]);
    expect(puts()).toHaveLength(1);
  });

  it("rejects permanently on 400, with the response body in the message and the log, without retrying", async () => {
    api.failNext(1, 400, '{"error":"invalid_result","message":"threads: expected array"}');
    const { s, delays, log } = sink();
    const { id, doc } = sampleDoc();
    const err = await rejection(s.store(id, doc, { status: "completed" }));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).code).toBe("result_rejected");
    expect(err.message).toContain("HTTP 400");
    expect(err.message).toContain("threads: expected array");
    expect(puts()).toHaveLength(1);
    expect(delays).toEqual([]);
    const line = log.lines().find((l) => l.msg === "CoreSight API rejected the result");
    expect(line).toMatchObject({ level: 50, status: 400, analysis_id: id });
    expect(String(line!.response_body)).toContain("threads: expected array");
  });

  it("truncates a huge rejection body", async () => {
    api.failNext(1, 422, "x".repeat(50_000));
    const { s } = sink();
    const { id, doc } = sampleDoc();
    const err = await rejection(s.store(id, doc, { status: "completed" }));
    expect(err.message.length).toBeLessThan(2000);
    expect(err.message).toContain("(50000 characters)");
  });

  it("a wrong token (401) is permanent, and the token is in neither the error nor the log", async () => {
    const { s, log } = sink({ token: "wrong-token-value" });
    const { id, doc } = sampleDoc();
    const err = await rejection(s.store(id, doc, { status: "completed" }));
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.message).toContain("HTTP 401");
    for (const text of [err.message, log.text()]) {
      expect(text).not.toContain("wrong-token-value");
      expect(text).not.toContain(TOKEN);
    }
  });

  it("the stand-in API rejects a document that breaks the schema (400 naming the field): permanent", async () => {
    const { s } = sink();
    const { id, doc } = sampleDoc();
    const err = await rejection(s.store(id, { ...doc, quality: 7 }, { status: "completed" }));
    expect((err as PermanentError).code).toBe("result_rejected");
    expect(err.message).toMatch(/quality/);
    const mismatch = await rejection(s.store(id, { ...doc, analysis_id: "another" }, { status: "completed" }));
    expect(mismatch.message).toMatch(/does not match the path/);
    expect(api.results.has(id)).toBe(false);
  });

  it("refuses to follow a redirect (it would carry the bearer token elsewhere)", async () => {
    api.setHandler((req, res) => {
      if (req.method !== "PUT") return false;
      res.writeHead(307, { location: "http://elsewhere.example/api" }).end();
      return true;
    });
    const { s } = sink();
    const { id, doc } = sampleDoc();
    const err = await rejection(s.store(id, doc, { status: "completed" }));
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.message).toMatch(/HTTP 307 redirect .*CORESIGHT_API_URL/);
  });

  it("a refused connection (API down) is retried, then transient", async () => {
    const url = api.url;
    await api.stop();
    const log = captureLogger();
    const rec = recordingSleep();
    const s = createHttpSink({ url, token: TOKEN, timeoutMs: 2000, putRunning: false, retry: { maxAttempts: 3 } }, { logger: log.logger, sleep: rec.sleep });
    const { id, doc } = sampleDoc();
    const err = await rejection(s.store(id, doc, { status: "completed" }));
    expect(err).toBeInstanceOf(TransientError);
    expect(err.message).toMatch(/\(after 3 attempts\): fetch failed \(ECONNREFUSED\)/);
    expect(rec.delays).toHaveLength(2);
    api = await startApiServer({ token: TOKEN }); // for afterEach
  });

  it("a request that hangs is cut by the per-request timeout and retried", async () => {
    let calls = 0;
    api.setHandler((req) => {
      // First PUT never answers; the second goes to the built-in route.
      return req.method === "PUT" && ++calls === 1;
    });
    const { s, delays } = sink({ timeoutMs: 300 });
    const { id, doc } = sampleDoc();
    await s.store(id, doc, { status: "completed" });
    expect(calls).toBe(2);
    expect(delays).toHaveLength(1);
    expect(api.results.get(id)).toHaveLength(1);
  });

  it("stops retrying when the caller aborts (shutdown)", async () => {
    api.failFor(60_000, 503);
    const ac = new AbortController();
    const s = createHttpSink(
      { url: api.url, token: TOKEN, timeoutMs: 5000, putRunning: false, retry: { maxAttempts: 100, maxWaitMs: 600_000 } },
      {
        sleep: (ms) =>
          new Promise((resolve) => {
            ac.abort();
            setTimeout(resolve, ms);
          }),
      },
    );
    const { id, doc } = sampleDoc();
    const err = await rejection(s.store(id, doc, { status: "completed", signal: ac.signal }));
    expect(err).toBeInstanceOf(TransientError);
    expect(err.message).toMatch(/\(aborted\)/);
    expect(puts()).toHaveLength(1);
  });

  it("PUTs a running status when enabled; never throws; a stored result wins (409)", async () => {
    const { s, log } = sink({ putRunning: true });
    const { id, doc } = sampleDoc();
    await s.markRunning!(id, doc.event, {});
    expect(api.running.get(id)).toMatchObject({ analysis_id: id, status: "running", event: { event_id: "coredog-1765567205-4242" } });
    await s.store(id, doc, { status: "completed" });
    expect(api.running.has(id)).toBe(false);
    await s.markRunning!(id, doc.event, {});
    expect(api.requests.at(-1)!.body).toMatchObject({ status: "running" });
    expect(api.running.has(id)).toBe(false);
    expect(log.lines().filter((l) => l.level === 40)).toEqual([]);
    // API down: logged, not thrown.
    await api.stop();
    await expect(s.markRunning!(id, doc.event, {})).resolves.toBeUndefined();
    expect(log.lines().some((l) => l.msg === "running status not sent")).toBe(true);
    api = await startApiServer({ token: TOKEN });
  });

  it("has no markRunning when the running PUT is off", () => {
    expect(sink().s.markRunning).toBeUndefined();
  });

  it("the whole store path never sends the agent's token", async () => {
    const store = createSinks({ sinks: ["http"], api: { url: api.url, token: TOKEN, timeoutMs: 5000, putRunning: true }, resultsDir: "/nonexistent", natsSubject: "x" }, {});
    const { id, doc } = sampleDoc();
    await store.markRunning(id, doc.event);
    await store.store(id, doc, { status: "completed" });
    expect(JSON.stringify(api.requests.map((r) => r.body))).not.toContain(AGENT_TOKEN);
  });
});
