/**
 * The CoreSight API's tables, as Kysely sees them. One schema for SQLite and
 * PostgreSQL (api/db/migrations.ts creates it on both): timestamps are ISO
 * 8601 UTC text (`toISOString()`, so text order is time order on both), JSON
 * documents are text, and there are no booleans (SQLite has none).
 *
 * - coredump: one dump a CoreDog agent reported; `id` is the coredump_id
 *   CoreSight assigns (the agent always sends 0).
 * - analysis: the job of analyzing one dump, keyed by the worker's
 *   analysis_id; `status` is queued → running → completed | failed.
 * - outbox: events waiting to be published to JetStream (the report is
 *   committed first, then published: a NATS outage delays, never loses).
 * - crash_group: one row per signature hash ever seen, holding what is not
 *   derived from the analyses: the signature text and the resolved mark.
 * - api_token: tokens made by `coresight-worker token`, kept as sha256 only.
 * - notification: webhook messages (a group is new, or regressed), queued
 *   with the result that caused them and sent by api/notify.ts.
 */
import type { ColumnType, Generated, Insertable, Selectable } from "kysely";

export type AnalysisStatus = "queued" | "running" | "completed" | "failed";

export interface CoredumpTable {
  id: Generated<number>;
  received_at: string;
  event_id: string;
  event_source: string;
  /** Without query string (a presigned signature is a secret). */
  file_url: string;
  file_name: string | null;
  executable_path: string | null;
  file_size: number | null;
  md5: string | null;
  image: string | null;
  pod: string | null;
  namespace: string | null;
  node: string | null;
  timestamp: string | null;
}

export interface AnalysisTable {
  analysis_id: string;
  coredump_id: number;
  status: AnalysisStatus;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  completed_at: string | null;
  /** The event as queued for the worker (no token), kept for reprocessing. */
  event_json: string;
  /** The last result document the worker stored. */
  result_json: string | null;
  signature_hash: string | null;
  signature_text: string | null;
  quality: number | null;
  error_code: string | null;
  /** The result's signal name (SIGSEGV): a column, so the crash browser filters without parsing documents (migration 0004). */
  signal_name: ColumnType<string | null, string | null | undefined, string | null>;
  attempt: number | null;
  worker_id: string | null;
  /** How many times the analysis was re-queued (part of the re-queued message's Nats-Msg-Id). */
  reprocess_count: ColumnType<number, number | undefined, number>;
}

export interface OutboxTable {
  id: Generated<number>;
  analysis_id: string;
  /** Nats-Msg-Id: JetStream drops a second publish of the same id (the stream's duplicate window). */
  msg_id: string;
  payload: string;
  created_at: string;
  published_at: string | null;
  attempts: ColumnType<number, number | undefined, number>;
  last_error: string | null;
}

export interface CrashGroupTable {
  signature_hash: string;
  signature_text: string;
  frames_json: string;
  created_at: string;
  resolved_at: string | null;
  /** The resolve whose regression was announced (its resolved_at at the time). */
  regression_notified_at: ColumnType<string | null, string | null | undefined, string | null>;
}

export type NotificationKind = "new" | "regressed";

/** A webhook message to send (Slack, WeCom), one row per channel. */
export interface NotificationTable {
  id: Generated<number>;
  channel: string;
  kind: NotificationKind;
  signature_hash: string;
  analysis_id: string;
  message: string;
  created_at: string;
  sent_at: string | null;
  attempts: ColumnType<number, number | undefined, number>;
  last_error: string | null;
}

/** A token made with `coresight-worker token create`; the token itself is never stored. */
export interface ApiTokenTable {
  /** Short public id, for `token list` and `token revoke`. */
  token_id: string;
  role: "agent" | "worker" | "read";
  name: string;
  /** Hex sha256 of the token. */
  token_sha256: string;
  created_at: string;
  revoked_at: string | null;
}

export interface Database {
  coredump: CoredumpTable;
  analysis: AnalysisTable;
  outbox: OutboxTable;
  crash_group: CrashGroupTable;
  api_token: ApiTokenTable;
  notification: NotificationTable;
}

export type CoredumpRow = Selectable<CoredumpTable>;
export type NewCoredump = Insertable<CoredumpTable>;
export type AnalysisRow = Selectable<AnalysisTable>;
export type OutboxRow = Selectable<OutboxTable>;
export type CrashGroupRow = Selectable<CrashGroupTable>;
export type ApiTokenRow = Selectable<ApiTokenTable>;
export type NotificationRow = Selectable<NotificationTable>;
