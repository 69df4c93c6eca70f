/**
 * Opens the database DATABASE_URL names and brings its schema up to date:
 * an embedded SQLite file (the default, one process) or PostgreSQL
 * (production, several API replicas). Everything above this module sees one
 * `Kysely<Database>` and does not know which it is.
 */
import fs from "node:fs";
import path from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, PostgresDialect, SqliteDialect } from "kysely";
import pg from "pg";
import type { ApiConfig } from "../../lib/config.js";
import { migrate, ping, type DialectKind } from "./migrations.js";
import type { Database } from "./schema.js";

export interface Db {
  kysely: Kysely<Database>;
  kind: DialectKind;
  ping(): Promise<void>;
  /** Closes the pool / file. Idempotent. */
  close(): Promise<void>;
}

const INT8_OID = 20;

export async function openDatabase(cfg: ApiConfig["database"]): Promise<Db> {
  let kysely: Kysely<Database>;
  if (cfg.kind === "sqlite") {
    if (cfg.file !== ":memory:") fs.mkdirSync(path.dirname(cfg.file), { recursive: true });
    const file = new BetterSqlite3(cfg.file);
    // WAL lets readers run beside the writer; synchronous=FULL makes a commit
    // durable before the API answers 202 (CoreDog never re-sends a report).
    file.pragma("journal_mode = WAL");
    file.pragma("synchronous = FULL");
    file.pragma("foreign_keys = ON");
    file.pragma("busy_timeout = 5000");
    kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: file }) });
  } else {
    const pool = new pg.Pool({
      connectionString: cfg.url,
      max: 10,
      // count(*) and bigint columns arrive as strings by default; every such
      // value here (sizes, counts) fits a double.
      types: {
        getTypeParser: ((oid: number, format?: "text" | "binary") =>
          oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
      },
    });
    // An idle client's error (the server restarted) must not crash the process; the pool replaces it.
    pool.on("error", () => undefined);
    kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  }
  let closed: Promise<void> | null = null;
  const db: Db = {
    kysely,
    kind: cfg.kind,
    ping: () => ping(kysely),
    close: () => (closed ??= kysely.destroy()),
  };
  try {
    await migrate(kysely, cfg.kind);
  } catch (e: unknown) {
    await db.close();
    throw e;
  }
  return db;
}
