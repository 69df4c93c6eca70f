/**
 * Migrations on real SQLite and PostgreSQL: a database made by an earlier
 * release (migrated only to 0003) keeps its rows, and 0004 backfills the
 * signal column from the stored documents, so the crash browser's signal
 * filter finds crashes stored before the upgrade.
 */
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { Kysely, PostgresDialect, SqliteDialect, sql } from "kysely";
import { Migrator } from "kysely/migration";
import BetterSqlite3 from "better-sqlite3";
import pg from "pg";
import { migrate, migrations } from "../../../api/db/migrations.js";
import { browseGroups } from "../../../api/db/queries.js";
import type { Database } from "../../../api/db/schema.js";
import { DB_KINDS, databases, type Databases } from "../helpers.js";

function open(kind: "sqlite" | "postgres", url: string): Kysely<Database> {
  if (kind === "sqlite") return new Kysely<Database>({ dialect: new SqliteDialect({ database: new BetterSqlite3(url.slice("sqlite:".length)) }) });
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }) });
}

describe.each(DB_KINDS)("migrations on %s", (kind) => {
  let dbs: Databases;
  beforeAll(async () => {
    dbs = await databases(kind);
  });
  afterAll(async () => {
    await dbs.stop();
  });

  it("0004 backfills analysis.signal_name from the documents stored before it", async () => {
    const db = open(kind, await dbs.fresh("migrations"));
    try {
      const before = new Migrator({ db, provider: { getMigrations: async () => migrations(kind) } });
      const to3 = await before.migrateTo("0003_notification");
      expect(to3.error).toBeUndefined();
      const now = "2026-12-01T10:00:00.000Z";
      const { id } = await db
        .insertInto("coredump")
        .values({
          received_at: now,
          event_id: "e1",
          event_source: "coredog",
          file_url: "http://x/c",
          file_name: "c",
          executable_path: null,
          file_size: 1,
          md5: null,
          image: "app:1",
          pod: "p",
          namespace: "prod",
          node: "n",
          timestamp: null,
        })
        .returning("id")
        .executeTakeFirstOrThrow();
      const row = (analysisId: string, doc: object | null) => ({
        analysis_id: analysisId,
        coredump_id: id,
        status: doc ? ("completed" as const) : ("queued" as const),
        created_at: now,
        updated_at: now,
        event_json: "null",
        result_json: doc ? JSON.stringify(doc) : null,
        signature_hash: doc ? "aaaabbbbccccdddd" : null,
        signature_text: doc ? "f | g" : null,
      });
      await sql`insert into crash_group (signature_hash, signature_text, frames_json, created_at) values ('aaaabbbbccccdddd', 'f | g', '["f","g"]', ${now})`.execute(db);
      for (const r of [row("with-signal", { signal: { name: "SIGBUS" } }), row("no-signal", { signal: null }), row("queued", null)]) {
        await sql`insert into analysis (analysis_id, coredump_id, status, created_at, updated_at, event_json, result_json, signature_hash, signature_text)
          values (${r.analysis_id}, ${r.coredump_id}, ${r.status}, ${r.created_at}, ${r.updated_at}, ${r.event_json}, ${r.result_json}, ${r.signature_hash}, ${r.signature_text})`.execute(
          db,
        );
      }
      expect(await migrate(db, kind)).toEqual(["0004_analysis_signal"]);
      const names = await db.selectFrom("analysis").select(["analysis_id", "signal_name"]).orderBy("analysis_id").execute();
      expect(names).toEqual([
        { analysis_id: "no-signal", signal_name: null },
        { analysis_id: "queued", signal_name: null },
        { analysis_id: "with-signal", signal_name: "SIGBUS" },
      ]);
      expect((await browseGroups(db, kind, { signal: "SIGBUS" })).map((g) => [g.signature_hash, g.count])).toEqual([["aaaabbbbccccdddd", 1]]);
      expect(await browseGroups(db, kind, { signal: "SIGSEGV" })).toEqual([]);
    } finally {
      await db.destroy();
    }
  });
});
