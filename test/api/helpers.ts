/**
 * Databases for the API tests: SQLite in a temp dir, and a private
 * PostgreSQL 15 cluster (dev/postgres.ts: initdb + pg_ctl on a free
 * port in a temp dir, torn down after), never the machine's own cluster. Each test gets a fresh
 * database of its own (`freshDatabase`).
 */
import fs from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import type { ApiConfig } from "../../lib/config.js";
import { loadApiConfig } from "../../lib/config.js";
import { startPostgres } from "../../dev/postgres.js";

export { startPostgres };

export const AGENT_TOKEN = "agent-token-kULT1AKXMu4xxnPNo5fSCW7J";
export const WORKER_TOKEN = "worker-token-5LXx7llJgLh45PCuxOg0";
export const READ_TOKEN = "read-token-0aa1bb2cc3dd4ee5ff6gg7";

export type DbKind = "sqlite" | "postgres";
export const DB_KINDS: DbKind[] = ["sqlite", "postgres"];

/** Hands out fresh databases of one kind; `stop()` removes them all. */
export interface Databases {
  fresh(name: string): Promise<string>;
  stop(): Promise<void>;
}

export async function databases(kind: DbKind): Promise<Databases> {
  let seq = 0;
  if (kind === "sqlite") {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-sqlite-"));
    return {
      fresh: async (name) => `sqlite:${path.join(dir, `${name}-${++seq}.db`)}`,
      stop: () => fs.rm(dir, { recursive: true, force: true }),
    };
  }
  const cluster = await startPostgres();
  return {
    fresh: (name) => cluster.createDatabase(`${name.toLowerCase().replace(/[^a-z0-9_]/g, "_")}_${++seq}`),
    stop: () => cluster.stop(),
  };
}

/** The API's environment for a test: its own database, tokens of all three roles. */
export function apiEnv(databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    API_LISTEN: "127.0.0.1:0",
    CORESIGHT_AGENT_TOKENS: AGENT_TOKEN,
    CORESIGHT_WORKER_TOKENS: WORKER_TOKEN,
    CORESIGHT_READ_TOKENS: READ_TOKEN,
    NATS_URL: "nats://127.0.0.1:1",
    LOG_LEVEL: "warn",
    ...extra,
  };
}

export function apiConfig(databaseUrl: string, extra: Record<string, string> = {}): ApiConfig {
  return loadApiConfig(apiEnv(databaseUrl, extra));
}

/** A CoreDog report as the agent builds it (see /work/shared/COREDOG.md). */
export function agentEvent(opts: { id?: string; fileUrl: string; pod?: string; namespace?: string; image?: string; node?: string; fileName?: string; token?: string }) {
  return {
    specversion: "1.0",
    type: "coredog.coredump.uploaded",
    source: "coredog-agent",
    id: opts.id ?? "coredog-1765567205-12345",
    time: "2025-12-12T15:30:05Z",
    datacontenttype: "application/json",
    data: {
      coredump_id: 0,
      file_url: opts.fileUrl,
      file_name: opts.fileName ?? path.basename(opts.fileUrl.split("?")[0]!),
      executable_path: "/app/crash",
      file_size: 0,
      md5: "",
      image: opts.image ?? "registry/app:1.0",
      timestamp: "2025-12-12T15:30:05Z",
      pod_name: opts.pod ?? "web-7d9f-abc",
      pod_namespace: opts.namespace ?? "prod",
      node_name: opts.node ?? "node-1",
    },
    token: opts.token ?? AGENT_TOKEN,
  };
}

/** A fetch to the API with a bearer token, answering status + parsed JSON. */
export async function call(base: string, method: string, p: string, opts: { token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
    headers["content-type"] ??= "application/json";
  }
  const res = await fetch(base + p, { method, headers, body });
  const text = await res.text();
  let json: any; // tests read arbitrary response shapes
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}

/**
 * POSTs `body` the way CoreDog's Go reporter does: to exactly the configured
 * URL (the bare API root; Go sends the path "/"), compact JSON, Go's headers,
 * the token in `Authorization: Bearer` (and, by the agent, in the body too).
 */
export async function postAsAgent(apiUrl: string, body: object, token = AGENT_TOKEN): Promise<{ status: number; json: any }> {
  const u = new URL(apiUrl);
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: u.hostname,
      port: u.port,
      method: "POST",
      path: u.pathname || "/",
      headers: {
        Host: u.host,
        "User-Agent": "Go-http-client/1.1",
        "Content-Length": String(Buffer.byteLength(text)),
        Authorization: `Bearer ${token}`,
        "Content-Type": "application/json",
        "Accept-Encoding": "gzip",
      },
    });
    req.on("response", (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (data += d));
      res.on("end", () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(data) });
        } catch {
          resolve({ status: res.statusCode ?? 0, json: data });
        }
      });
    });
    req.on("error", reject);
    req.end(text);
  });
}
