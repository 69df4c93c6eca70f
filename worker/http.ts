/** /healthz, /readyz and /metrics on METRICS_PORT. */
import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { toError } from "../lib/errors.js";
import type { Metrics } from "./metrics.js";

export interface ReadinessChecks {
  /** Each returns null when fine, else a short reason. */
  [name: string]: () => Promise<string | null> | string | null;
}

/** Readiness check: null when `dir` exists (created if missing) and is writable, else the reason. */
export async function workDirWritable(dir: string): Promise<string | null> {
  try {
    await fs.mkdir(dir, { recursive: true });
    await fs.access(dir, fs.constants.W_OK);
    return null;
  } catch (e: unknown) {
    return `work dir ${dir} not writable: ${toError(e).message}`;
  }
}

export interface ProbeServer {
  port: number;
  close(): Promise<void>;
}

/**
 * Serves /healthz (always 200 while the process answers), /readyz (200, or
 * 503 with `{ ready: false, failures: { <check>: <reason> } }`), /metrics
 * (the registry in Prometheus text) and 404 for anything else. Port 0 picks a
 * free port; `close()` also ends kept-alive connections.
 */
export async function startProbeServer(port: number, metrics: Metrics, checks: ReadinessChecks, host = "0.0.0.0"): Promise<ProbeServer> {
  const server = http.createServer((req, res) => {
    void (async () => {
      const url = (req.url ?? "/").split("?")[0];
      if (url === "/healthz") {
        res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      } else if (url === "/readyz") {
        const failures: Record<string, string> = {};
        for (const [name, check] of Object.entries(checks)) {
          try {
            const reason = await check();
            if (reason) failures[name] = reason;
          } catch (e: unknown) {
            // A rejected string or object has no .message: the check would be
            // counted as failing yet vanish from the JSON (undefined is dropped).
            failures[name] = toError(e).message || "check failed";
          }
        }
        const ok = Object.keys(failures).length === 0;
        res.writeHead(ok ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify({ ready: ok, failures }) + "\n");
      } else if (url === "/metrics") {
        const body = await metrics.registry.metrics();
        res.writeHead(200, { "content-type": metrics.registry.contentType }).end(body);
      } else {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      }
    })().catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(e));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
