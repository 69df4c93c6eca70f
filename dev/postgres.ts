/**
 * A private PostgreSQL 15 cluster for tests and the bench (never for
 * production, never the machine's own cluster): initdb + pg_ctl on a free
 * loopback port in a temp dir, removed by stop().
 */
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { freePort } from "./port.js";

const run = promisify(execFile);
const PG_BIN = "/usr/lib/postgresql/15/bin";

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
