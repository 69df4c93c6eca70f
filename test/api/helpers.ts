/**
 * Databases for the API tests: SQLite in a temp dir, and a private
 * PostgreSQL 15 cluster (initdb + pg_ctl on a free port in a temp dir, torn
 * down after), never the machine's own cluster. Each test gets a fresh
 * database of its own (`freshDatabase`).
 */
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import type { ApiConfig } from "../../lib/config.js";
import { loadApiConfig } from "../../lib/config.js";
import { freePort } from "../../worker/devPort.js";

const run = promisify(execFile);
const PG_BIN = "/usr/lib/postgresql/15/bin";

export const AGENT_TOKEN = "agent-token-kULT1AKXMu4xxnPNo5fSCW7J";
export const WORKER_TOKEN = "worker-token-5LXx7llJgLh45PCuxOg0";
export const READ_TOKEN = "read-token-0aa1bb2cc3dd4ee5ff6gg7";

export interface PgCluster {
  /** postgres://… of a new empty database. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * initdb refuses to run as root: as root the cluster belongs to the
 * `postgres` system user (Debian's postgresql package creates it).
 */
async function asPgUser(cmd: string, args: string[]): Promise<void> {
  const root = process.getuid?.() === 0;
  await run(root ? "runuser" : cmd, root ? ["-u", "postgres", "--", cmd, ...args] : args, { timeout: 60_000 });
}

export async function startPostgres(): Promise<PgCluster> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-pg-"));
  if (process.getuid?.() === 0) await run("chown", ["postgres:postgres", dir]);
  const data = path.join(dir, "data");
  const port = await freePort();
  await asPgUser(`${PG_BIN}/initdb`, ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]);
  await asPgUser(`${PG_BIN}/pg_ctl`, ["-D", data, "-l", path.join(dir, "log"), "-w", "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, "start"]);
  const admin = new pg.Client({ host: "127.0.0.1", port, user: "postgres", database: "postgres" });
  await admin.connect();
  let stopped: Promise<void> | null = null;
  return {
    async createDatabase(name) {
      await admin.query(`CREATE DATABASE "${name}"`);
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    stop() {
      stopped ??= (async () => {
        await admin.end().catch(() => undefined);
        await asPgUser(`${PG_BIN}/pg_ctl`, ["-D", data, "-m", "immediate", "-w", "stop"]).catch(() => undefined);
        await fs.rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

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
  let json: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read arbitrary response shapes
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}
