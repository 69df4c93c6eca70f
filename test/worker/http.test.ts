/**
 * The probe server on a real loopback port: /healthz, /readyz with real
 * checks (workDirWritable on real directories), /metrics from a real
 * prom-client registry, 404 for the rest.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import fs from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { startProbeServer, workDirWritable, type ProbeServer, type ReadinessChecks } from "../../worker/http.js";
import { createMetrics, type Metrics } from "../../worker/metrics.js";

let tmp: string;
const servers: ProbeServer[] = [];

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-http-test-"));
});
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function start(checks: ReadinessChecks = {}, metrics: Metrics = createMetrics()): Promise<ProbeServer> {
  const s = await startProbeServer(0, metrics, checks, "127.0.0.1");
  servers.push(s);
  return s;
}

interface Reply {
  status: number;
  type: string;
  body: string;
}

/** One plain GET (a fresh connection each time, as kubelet does). */
function get(port: number, pathname: string, method = "GET"): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path: pathname, method, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, type: String(res.headers["content-type"] ?? ""), body }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

describe("startProbeServer", () => {
  it("listens on a free port when given 0", async () => {
    const a = await start();
    const b = await start();
    expect(a.port).toBeGreaterThan(0);
    expect(b.port).not.toBe(a.port);
  });

  it("/healthz answers 200 ok, with or without a query", async () => {
    const s = await start({ broken: () => "always failing" });
    for (const p of ["/healthz", "/healthz?verbose=1"]) {
      const r = await get(s.port, p);
      expect(r).toEqual({ status: 200, type: "text/plain", body: "ok\n" });
    }
  });

  it("/readyz answers 200 when every check passes (sync and async)", async () => {
    const s = await start({ sync: () => null, async: async () => null, workDir: () => workDirWritable(path.join(tmp, "work")) });
    const r = await get(s.port, "/readyz");
    expect(r.status).toBe(200);
    expect(r.type).toBe("application/json");
    expect(JSON.parse(r.body)).toEqual({ ready: true, failures: {} });
  });

  it("/readyz answers 503 naming each failing check and its reason", async () => {
    const blocker = path.join(tmp, "a-file");
    await fs.writeFile(blocker, "not a directory");
    const s = await start({
      nats: async () => "nats disconnected",
      fine: () => null,
      workDir: () => workDirWritable(path.join(blocker, "work")),
      throws: () => {
        throw new Error("check exploded");
      },
    });
    const r = await get(s.port, "/readyz");
    expect(r.status).toBe(503);
    const body = JSON.parse(r.body) as { ready: boolean; failures: Record<string, string> };
    expect(body.ready).toBe(false);
    expect(Object.keys(body.failures).sort()).toEqual(["nats", "throws", "workDir"]);
    expect(body.failures.nats).toBe("nats disconnected");
    expect(body.failures.throws).toBe("check exploded");
    expect(body.failures.workDir).toContain(path.join(blocker, "work"));
  });

  it("/readyz names a check that throws something that is not an Error", async () => {
    const s = await start({
      // A rejected string or a thrown object still makes the worker unready, visibly.
      rejectsString: () => Promise.reject("socket closed"),
      throwsObject: () => {
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- the case under test: a check that throws a non-Error
        throw { code: 42 };
      },
    });
    const r = await get(s.port, "/readyz");
    expect(r.status).toBe(503);
    const body = JSON.parse(r.body) as { ready: boolean; failures: Record<string, string> };
    expect(body.failures.rejectsString).toBe("socket closed");
    expect(typeof body.failures.throwsObject).toBe("string");
    expect(body.failures.throwsObject!.length).toBeGreaterThan(0);
  });

  it("/readyz follows the checks from one request to the next", async () => {
    let connected = false;
    const s = await start({ nats: () => (connected ? null : "not connected yet") });
    expect((await get(s.port, "/readyz")).status).toBe(503);
    connected = true;
    expect((await get(s.port, "/readyz")).status).toBe(200);
  });

  it("/metrics serves Prometheus text with the coresight_worker_* metrics and their values", async () => {
    const metrics = createMetrics({ version: "1.2.3", concurrency: 4 });
    metrics.received.inc(3);
    metrics.results.inc({ status: "failed", error_code: "not_a_core" });
    metrics.settled.inc({ action: "ack" }, 2);
    metrics.stageSeconds.observe({ stage: "gdb" }, 0.3);
    metrics.inFlight.set(2);
    metrics.bytesDownloaded.inc(4096);
    const s = await start({}, metrics);
    const r = await get(s.port, "/metrics");
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^text\/plain; version=0\.0\.4/);
    for (const name of [
      "coresight_worker_messages_received_total",
      "coresight_worker_results_total",
      "coresight_worker_redeliveries_total",
      "coresight_worker_messages_settled_total",
      "coresight_worker_stage_duration_seconds",
      "coresight_worker_jobs_in_flight",
      "coresight_worker_downloaded_bytes_total",
      "coresight_worker_concurrency",
      "coresight_worker_build_info",
    ]) {
      expect(r.body).toContain(`# TYPE ${name} `);
      expect(r.body).toMatch(new RegExp(`^# HELP ${name} \\S`, "m"));
    }
    expect(r.body).toMatch(/^coresight_worker_messages_received_total 3$/m);
    expect(r.body).toMatch(/^coresight_worker_results_total\{status="failed",error_code="not_a_core"\} 1$/m);
    expect(r.body).toMatch(/^coresight_worker_messages_settled_total\{action="ack"\} 2$/m);
    expect(r.body).toMatch(/^coresight_worker_stage_duration_seconds_bucket\{le="0\.5",stage="gdb"\} 1$/m);
    expect(r.body).toMatch(/^coresight_worker_stage_duration_seconds_bucket\{le="0\.25",stage="gdb"\} 0$/m);
    expect(r.body).toMatch(/^coresight_worker_stage_duration_seconds_count\{stage="gdb"\} 1$/m);
    expect(r.body).toMatch(/^coresight_worker_jobs_in_flight 2$/m);
    expect(r.body).toMatch(/^coresight_worker_downloaded_bytes_total 4096$/m);
    expect(r.body).toMatch(/^coresight_worker_concurrency 4$/m);
    expect(r.body).toMatch(/^coresight_worker_build_info\{version="1\.2\.3"\} 1$/m);
    // The default process and Node.js metrics keep their standard names (no
    // application prefix), so stock dashboards and alerts find them.
    expect(r.body).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(r.body).toMatch(/^process_cpu_seconds_total \d/m);
    expect(r.body).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
    expect(r.body).not.toMatch(/^coresight_worker_process_/m);
    // Every other sample line belongs to the worker.
    const samples = r.body.split("\n").filter((l) => l && !l.startsWith("#"));
    expect(samples.length).toBeGreaterThan(10);
    for (const l of samples) expect(l).toMatch(/^(coresight_worker_|process_|nodejs_)/);
  });

  it("without a version, coresight_worker_build_info says unknown", async () => {
    const s = await start({}, createMetrics());
    expect((await get(s.port, "/metrics")).body).toMatch(/^coresight_worker_build_info\{version="unknown"\} 1$/m);
  });

  it("two metric sets in one process do not collide (each has its own registry)", async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.received.inc(5);
    const sa = await start({}, a);
    const sb = await start({}, b);
    expect((await get(sa.port, "/metrics")).body).toMatch(/^coresight_worker_messages_received_total 5$/m);
    expect((await get(sb.port, "/metrics")).body).toMatch(/^coresight_worker_messages_received_total 0$/m);
  });

  it("answers 404 for any other path", async () => {
    const s = await start();
    for (const p of ["/", "/health", "/healthz/", "/metrics/x", "/readyz.json"]) {
      const r = await get(s.port, p);
      expect([p, r.status]).toEqual([p, 404]);
    }
  });

  it("close() ends open keep-alive connections and frees the port", async () => {
    const s = await startProbeServer(0, createMetrics(), {}, "127.0.0.1");
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      http
        .get({ host: "127.0.0.1", port: s.port, path: "/healthz", agent }, (res) => {
          res.resume();
          res.on("end", () => resolve());
        })
        .on("error", reject);
    });
    await s.close();
    agent.destroy();
    // Nothing listens on the port any more.
    await expect(
      new Promise<void>((resolve, reject) => {
        const sock = net.connect({ host: "127.0.0.1", port: s.port }, () => {
          sock.destroy();
          resolve();
        });
        sock.on("error", reject);
      }),
    ).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("rejects when the port is taken", async () => {
    const s = await start();
    await expect(startProbeServer(s.port, createMetrics(), {}, "127.0.0.1")).rejects.toMatchObject({ code: "EADDRINUSE" });
  });
});

describe("workDirWritable", () => {
  it("creates a missing directory and reports it writable", async () => {
    const dir = path.join(tmp, "deep", "er", "work");
    expect(await workDirWritable(dir)).toBeNull();
    expect((await fs.stat(dir)).isDirectory()).toBe(true);
  });

  it("names the directory when it cannot be made", async () => {
    const file = path.join(tmp, "plain-file");
    await fs.writeFile(file, "x");
    const reason = await workDirWritable(path.join(file, "work"));
    expect(reason).toMatch(/^work dir .*plain-file\/work not writable: .*(ENOTDIR|EEXIST)/);
  });

  it("a path that is a file, not a directory, is not a work dir", async () => {
    const file = path.join(tmp, "file-as-dir");
    await fs.writeFile(file, "x");
    expect(await workDirWritable(file)).toMatch(/file-as-dir/);
  });
});
