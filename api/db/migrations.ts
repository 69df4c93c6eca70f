/**
 * Schema migrations, run at start (Kysely's Migrator, which records what ran
 * in `kysely_migration` and locks against a second API starting at the same
 * moment). Migrations are append-only: never edit one that has shipped, add
 * the next. The few dialect differences (auto-increment keys, float type)
 * are decided here and nowhere else.
 */
import { sql, type Kysely } from "kysely";
import { Migrator, type Migration } from "kysely/migration";

export type DialectKind = "sqlite" | "postgres";

// Kysely<any>: a migration runs against the schema as it was then, not the current Database type.
export function migrations(kind: DialectKind): Record<string, Migration> {
  const serial = kind === "postgres" ? "serial" : "integer";
  const float = kind === "postgres" ? "double precision" : "real";
  return {
    "0001_initial": {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable("coredump")
          .addColumn("id", serial, (c) => (kind === "postgres" ? c.primaryKey() : c.primaryKey().autoIncrement()))
          .addColumn("received_at", "text", (c) => c.notNull())
          .addColumn("event_id", "text", (c) => c.notNull())
          .addColumn("event_source", "text", (c) => c.notNull())
          .addColumn("file_url", "text", (c) => c.notNull())
          .addColumn("file_name", "text")
          .addColumn("executable_path", "text")
          .addColumn("file_size", "bigint")
          .addColumn("md5", "text")
          .addColumn("image", "text")
          .addColumn("pod", "text")
          .addColumn("namespace", "text")
          .addColumn("node", "text")
          .addColumn("timestamp", "text")
          .execute();
        await db.schema
          .createTable("analysis")
          .addColumn("analysis_id", "text", (c) => c.primaryKey())
          .addColumn("coredump_id", "integer", (c) => c.notNull().references("coredump.id"))
          .addColumn("status", "text", (c) => c.notNull())
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("updated_at", "text", (c) => c.notNull())
          .addColumn("started_at", "text")
          .addColumn("completed_at", "text")
          .addColumn("event_json", "text", (c) => c.notNull())
          .addColumn("result_json", "text")
          .addColumn("signature_hash", "text")
          .addColumn("signature_text", "text")
          .addColumn("quality", float)
          .addColumn("error_code", "text")
          .addColumn("attempt", "integer")
          .addColumn("worker_id", "text")
          .addColumn("reprocess_count", "integer", (c) => c.notNull().defaultTo(0))
          .execute();
        await db.schema.createIndex("analysis_created").on("analysis").columns(["created_at", "analysis_id"]).execute();
        await db.schema.createIndex("analysis_signature").on("analysis").column("signature_hash").execute();
        await db.schema.createIndex("analysis_coredump").on("analysis").column("coredump_id").execute();
        await db.schema.createIndex("coredump_namespace_pod").on("coredump").columns(["namespace", "pod"]).execute();
        await db.schema
          .createTable("outbox")
          .addColumn("id", serial, (c) => (kind === "postgres" ? c.primaryKey() : c.primaryKey().autoIncrement()))
          .addColumn("analysis_id", "text", (c) => c.notNull().references("analysis.analysis_id"))
          .addColumn("msg_id", "text", (c) => c.notNull().unique())
          .addColumn("payload", "text", (c) => c.notNull())
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("published_at", "text")
          .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("last_error", "text")
          .execute();
        await db.schema.createIndex("outbox_pending").on("outbox").columns(["published_at", "id"]).execute();
        await db.schema
          .createTable("crash_group")
          .addColumn("signature_hash", "text", (c) => c.primaryKey())
          .addColumn("signature_text", "text", (c) => c.notNull())
          .addColumn("frames_json", "text", (c) => c.notNull())
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("resolved_at", "text")
          .execute();
      },
    },
    "0002_api_token": {
      async up(db: Kysely<any>) {
        // Tokens made by `coresight-worker token create`: only their sha256 is kept.
        await db.schema
          .createTable("api_token")
          .addColumn("token_id", "text", (c) => c.primaryKey())
          .addColumn("role", "text", (c) => c.notNull())
          .addColumn("name", "text", (c) => c.notNull())
          .addColumn("token_sha256", "text", (c) => c.notNull().unique())
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("revoked_at", "text")
          .execute();
      },
    },
    "0003_notification": {
      async up(db: Kysely<any>) {
        // Webhook messages for new and regressed groups, queued in the result's transaction.
        await db.schema
          .createTable("notification")
          .addColumn("id", serial, (c) => (kind === "postgres" ? c.primaryKey() : c.primaryKey().autoIncrement()))
          .addColumn("channel", "text", (c) => c.notNull())
          .addColumn("kind", "text", (c) => c.notNull())
          .addColumn("signature_hash", "text", (c) => c.notNull())
          .addColumn("analysis_id", "text", (c) => c.notNull())
          .addColumn("message", "text", (c) => c.notNull())
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("sent_at", "text")
          .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("last_error", "text")
          .execute();
        await db.schema.createIndex("notification_pending").on("notification").columns(["sent_at", "id"]).execute();
        // When a regression of the current resolve was announced: once per resolve, not per occurrence.
        await db.schema.alterTable("crash_group").addColumn("regression_notified_at", "text").execute();
      },
    },
    "0004_analysis_signal": {
      async up(db: Kysely<any>) {
        // The crash browser's signal filter read every document's JSON in eight
        // aggregates (2 s with 10k analyses on PostgreSQL): keep the name in a column.
        await db.schema.alterTable("analysis").addColumn("signal_name", "text").execute();
        const fromJson = kind === "sqlite" ? sql`json_extract(result_json, '$.signal.name')` : sql`(result_json::json #>> '{signal,name}')`;
        await sql`update analysis set signal_name = ${fromJson} where result_json is not null`.execute(db);
      },
    },
  };
}

/** Brings the schema to the latest migration; throws naming the migration that failed. */
export async function migrate(db: Kysely<any>, kind: DialectKind): Promise<string[]> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations(kind) } });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === "Error");
  if (error !== undefined || failed) {
    throw new Error(`database migration ${failed?.migrationName ?? "(none)"} failed`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}

/** A cheap round trip for the health check. */
export async function ping(db: Kysely<any>): Promise<void> {
  await sql`select 1`.execute(db);
}
