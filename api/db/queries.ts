/**
 * The one query layer: every read and write the API makes, for SQLite and
 * PostgreSQL alike (Kysely compiles each to the dialect). Multi-row changes
 * run in one transaction, so a report is either fully accepted (coredump,
 * analysis, outbox row) or not at all.
 *
 * Crash groups are derived from the analyses at read time (count, first and
 * last seen, distinct pods/namespaces/images/nodes, latest and best
 * analysis): a replaced result or a reprocessed analysis can never make a
 * stored counter drift. `crash_group` keeps only what cannot be derived: the
 * signature's text and when it was marked resolved.
 */
import { sql, type Insertable, type Kysely, type Transaction } from "kysely";
import type { DialectKind } from "./migrations.js";
import type { AnalysisRow, AnalysisStatus, AnalysisTable, CoredumpRow, Database, NewCoredump, NotificationKind, NotificationRow, OutboxRow } from "./schema.js";

type Q = Kysely<Database> | Transaction<Database>;

/** Unique-key violation on either database (two identical reports at the same moment). */
function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === "23505" || code === "SQLITE_CONSTRAINT_PRIMARYKEY" || code === "SQLITE_CONSTRAINT_UNIQUE";
}

// ---------------------------------------------------------------- ingest

export interface AcceptInput {
  analysisId: string;
  coredump: Omit<NewCoredump, "id">;
  /** The event to queue for the worker, given the coredump_id just assigned. */
  payload: (coredumpId: number) => string;
  now: string;
}

export interface Accepted {
  coredump_id: number;
  analysis_id: string;
  status: AnalysisStatus;
  /** False for a repeated report: nothing new was written. */
  created: boolean;
}

/** A new analysis row, `queued`, nothing known yet but its event. */
function queuedAnalysis(analysisId: string, coredumpId: number, now: string, eventJson: string): Insertable<AnalysisTable> {
  return {
    analysis_id: analysisId,
    coredump_id: coredumpId,
    status: "queued",
    created_at: now,
    updated_at: now,
    started_at: null,
    completed_at: null,
    event_json: eventJson,
    result_json: null,
    signature_hash: null,
    signature_text: null,
    quality: null,
    error_code: null,
    attempt: null,
    worker_id: null,
  };
}

async function existing(q: Q, analysisId: string): Promise<Accepted | undefined> {
  const row = await q.selectFrom("analysis").select(["coredump_id", "analysis_id", "status"]).where("analysis_id", "=", analysisId).executeTakeFirst();
  return row ? { ...row, created: false } : undefined;
}

/**
 * Commits a report: the coredump (its id assigned here), the analysis
 * `queued` and the outbox row that will publish it. A report whose
 * analysis_id is already known changes nothing and answers the same ids.
 */
export async function acceptReport(db: Kysely<Database>, input: AcceptInput): Promise<Accepted> {
  const attempt = () =>
    db.transaction().execute(async (trx) => {
      const known = await existing(trx, input.analysisId);
      if (known) return known;
      const { id } = await trx.insertInto("coredump").values(input.coredump).returning("id").executeTakeFirstOrThrow();
      const payload = input.payload(id);
      await trx
        .insertInto("analysis")
        .values(queuedAnalysis(input.analysisId, id, input.now, payload))
        .execute();
      await trx
        .insertInto("outbox")
        .values({ analysis_id: input.analysisId, msg_id: input.analysisId, payload, created_at: input.now, published_at: null, last_error: null })
        .execute();
      return { coredump_id: id, analysis_id: input.analysisId, status: "queued" as const, created: true };
    });
  try {
    return await attempt();
  } catch (e: unknown) {
    // The same report committed by a concurrent request between our read and our insert.
    if (!isUniqueViolation(e)) throw e;
    const known = await existing(db, input.analysisId);
    if (!known) throw e;
    return known;
  }
}

/**
 * Queues an analysis again through the outbox (reprocess). Its previous
 * result stays until the worker stores the new one. The message id differs
 * from the first publish's, or JetStream's duplicate window would drop it.
 */
export async function requeueAnalysis(db: Kysely<Database>, analysisId: string, now: string): Promise<AnalysisRow | undefined> {
  return db.transaction().execute(async (trx) => {
    const a = await trx.selectFrom("analysis").selectAll().where("analysis_id", "=", analysisId).executeTakeFirst();
    if (!a) return undefined;
    const n = a.reprocess_count + 1;
    await trx.updateTable("analysis").set({ status: "queued", reprocess_count: n, updated_at: now }).where("analysis_id", "=", analysisId).execute();
    await trx
      .insertInto("outbox")
      .values({ analysis_id: analysisId, msg_id: `${analysisId}.reprocess-${n}`, payload: a.event_json, created_at: now, published_at: null, last_error: null })
      .execute();
    return { ...a, status: "queued" as const, reprocess_count: n, updated_at: now };
  });
}

// ---------------------------------------------------------------- outbox

/**
 * The oldest unpublished rows. With `skipLocked` (PostgreSQL, inside a
 * transaction) the rows are locked until it ends and rows another replica's
 * publisher holds are skipped: each row goes to one publisher.
 */
export async function pendingOutbox(db: Kysely<Database>, limit: number, opts: { skipLocked?: boolean } = {}): Promise<OutboxRow[]> {
  const q = db.selectFrom("outbox").selectAll().where("published_at", "is", null).orderBy("id").limit(limit);
  return (opts.skipLocked ? q.forUpdate().skipLocked() : q).execute();
}

export async function markPublished(db: Kysely<Database>, id: number, now: string): Promise<void> {
  await db.updateTable("outbox").set({ published_at: now, last_error: null }).where("id", "=", id).execute();
}

export async function markPublishFailed(db: Kysely<Database>, id: number, error: string): Promise<void> {
  await db
    .updateTable("outbox")
    .set((eb) => ({ attempts: eb("attempts", "+", 1), last_error: error.slice(0, 1000) }))
    .where("id", "=", id)
    .execute();
}

export async function countPending(db: Kysely<Database>): Promise<number> {
  const r = await db
    .selectFrom("outbox")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .where("published_at", "is", null)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

// ---------------------------------------------------------------- results

/** What a PUT of a running status or a result did (docs/api.md, "Status semantics"). */
export type StoreOutcome = "created" | "replaced" | "running" | "conflict";

export interface StoreInput {
  analysisId: string;
  status: "running" | "completed" | "failed";
  now: string;
  /** The body as received, stored verbatim for a result. */
  documentJson: string;
  signature: { hash: string; text: string; frames: string[] } | null;
  quality: number | null;
  errorCode: string | null;
  /** The result's signal name, for the crash browser's filter. */
  signalName: string | null;
  attempt: number | null;
  workerId: string | null;
  startedAt: string | null;
  /** The event facts of the document: to create the analysis when the API has never seen it (an event replayed onto NATS directly). */
  coredump: Omit<NewCoredump, "id">;
  /** Webhook channels to tell when this result makes its group new or regressed, and the message for each kind. */
  notify?: { channels: readonly string[]; message: (kind: NotificationKind) => string };
}

/**
 * One PUT /api/v1/analyses/{id}. A running status never replaces a result
 * ("conflict", the worker reads 409 as fine); a result creates or replaces.
 */
export async function storeResult(db: Kysely<Database>, input: StoreInput): Promise<StoreOutcome> {
  const run = () =>
    db.transaction().execute(async (trx): Promise<StoreOutcome> => {
      let a = await trx.selectFrom("analysis").select(["status", "result_json"]).where("analysis_id", "=", input.analysisId).executeTakeFirst();
      if (!a) {
        const { id } = await trx.insertInto("coredump").values(input.coredump).returning("id").executeTakeFirstOrThrow();
        await trx
          .insertInto("analysis")
          .values(queuedAnalysis(input.analysisId, id, input.now, "null"))
          .execute();
        a = { status: "queued", result_json: null };
      }
      if (input.status === "running") {
        if (a.status === "completed" || a.status === "failed") return "conflict";
        await trx
          .updateTable("analysis")
          .set({ status: "running", started_at: input.startedAt ?? input.now, updated_at: input.now })
          .where("analysis_id", "=", input.analysisId)
          .execute();
        return "running";
      }
      await trx
        .updateTable("analysis")
        .set({
          status: input.status,
          result_json: input.documentJson,
          signature_hash: input.signature?.hash ?? null,
          signature_text: input.signature?.text ?? null,
          quality: input.quality,
          error_code: input.errorCode,
          signal_name: input.signalName,
          attempt: input.attempt,
          worker_id: input.workerId,
          completed_at: input.now,
          updated_at: input.now,
        })
        .where("analysis_id", "=", input.analysisId)
        .execute();
      if (input.signature) {
        const inserted = await trx
          .insertInto("crash_group")
          .values({
            signature_hash: input.signature.hash,
            signature_text: input.signature.text,
            frames_json: JSON.stringify(input.signature.frames),
            created_at: input.now,
            resolved_at: null,
          })
          .onConflict((oc) => oc.column("signature_hash").doNothing())
          // A row comes back only when this result created the group (both dialects).
          .returning("signature_hash")
          .executeTakeFirst();
        if (input.notify && input.notify.channels.length > 0) {
          const kind = inserted !== undefined ? "new" : await regression(trx, input.analysisId, input.signature.hash);
          if (kind) await queueNotifications(trx, kind, input.signature.hash, input, input.notify);
        }
      }
      return a.result_json === null ? "created" : "replaced";
    });
  try {
    return await run();
  } catch (e: unknown) {
    // A concurrent first PUT created the analysis; now it exists, so this one takes the update path.
    if (!isUniqueViolation(e)) throw e;
    return run();
  }
}

/**
 * "regressed" when this analysis's dump was received after its group was
 * resolved and that resolve's regression was not announced yet (marking it
 * announced); else null.
 */
async function regression(trx: Transaction<Database>, analysisId: string, hash: string): Promise<NotificationKind | null> {
  const g = await trx.selectFrom("crash_group").select(["resolved_at", "regression_notified_at"]).where("signature_hash", "=", hash).executeTakeFirstOrThrow();
  if (g.resolved_at === null || g.regression_notified_at === g.resolved_at) return null;
  const c = await trx
    .selectFrom("analysis as a")
    .innerJoin("coredump as c", "c.id", "a.coredump_id")
    .select("c.received_at")
    .where("a.analysis_id", "=", analysisId)
    .executeTakeFirstOrThrow();
  if (c.received_at <= g.resolved_at) return null;
  await trx.updateTable("crash_group").set({ regression_notified_at: g.resolved_at }).where("signature_hash", "=", hash).execute();
  return "regressed";
}

async function queueNotifications(trx: Transaction<Database>, kind: NotificationKind, hash: string, input: StoreInput, notify: NonNullable<StoreInput["notify"]>): Promise<void> {
  const message = notify.message(kind);
  await trx
    .insertInto("notification")
    .values(
      notify.channels.map((channel) => ({ channel, kind, signature_hash: hash, analysis_id: input.analysisId, message, created_at: input.now, sent_at: null, last_error: null })),
    )
    .execute();
}

export async function pendingNotifications(db: Kysely<Database>, limit: number): Promise<NotificationRow[]> {
  return db.selectFrom("notification").selectAll().where("sent_at", "is", null).orderBy("id").limit(limit).execute();
}

export async function markNotified(db: Kysely<Database>, id: number, now: string): Promise<void> {
  await db.updateTable("notification").set({ sent_at: now, last_error: null }).where("id", "=", id).execute();
}

export async function markNotifyFailed(db: Kysely<Database>, id: number, error: string): Promise<void> {
  await db
    .updateTable("notification")
    .set((eb) => ({ attempts: eb("attempts", "+", 1), last_error: error.slice(0, 1000) }))
    .where("id", "=", id)
    .execute();
}

// ---------------------------------------------------------------- analyses

export interface AnalysisFilters {
  status?: string;
  namespace?: string;
  pod?: string;
  image?: string;
  signature?: string;
  /** ISO time: analyses created at or after it. */
  since?: string;
}

/** Keyset position: the last row of the previous page. */
export interface AnalysisCursor {
  created_at: string;
  analysis_id: string;
}

export type AnalysisWithDump = AnalysisRow & { dump: CoredumpRow };

function selectAnalyses(db: Kysely<Database>) {
  return db
    .selectFrom("analysis as a")
    .innerJoin("coredump as c", "c.id", "a.coredump_id")
    .selectAll("a")
    .select([
      "c.received_at as c_received_at",
      "c.event_id as c_event_id",
      "c.event_source as c_event_source",
      "c.file_url as c_file_url",
      "c.file_name as c_file_name",
      "c.executable_path as c_executable_path",
      "c.file_size as c_file_size",
      "c.md5 as c_md5",
      "c.image as c_image",
      "c.pod as c_pod",
      "c.namespace as c_namespace",
      "c.node as c_node",
      "c.timestamp as c_timestamp",
    ]);
}

type JoinedRow = Awaited<ReturnType<ReturnType<typeof selectAnalyses>["executeTakeFirstOrThrow"]>>;

function split(r: JoinedRow): AnalysisWithDump {
  const { c_received_at, c_event_id, c_event_source, c_file_url, c_file_name, c_executable_path, c_file_size, c_md5, c_image, c_pod, c_namespace, c_node, c_timestamp, ...a } = r;
  return {
    ...a,
    dump: {
      id: a.coredump_id,
      received_at: c_received_at,
      event_id: c_event_id,
      event_source: c_event_source,
      file_url: c_file_url,
      file_name: c_file_name,
      executable_path: c_executable_path,
      file_size: c_file_size,
      md5: c_md5,
      image: c_image,
      pod: c_pod,
      namespace: c_namespace,
      node: c_node,
      timestamp: c_timestamp,
    },
  };
}

/** Newest first; `limit + 1` rows are read to know whether a next page exists. */
export async function listAnalyses(
  db: Kysely<Database>,
  f: AnalysisFilters,
  limit: number,
  cursor: AnalysisCursor | null,
): Promise<{ items: AnalysisWithDump[]; next: AnalysisCursor | null }> {
  let q = selectAnalyses(db);
  if (f.status) q = q.where("a.status", "=", f.status as AnalysisStatus);
  if (f.namespace) q = q.where("c.namespace", "=", f.namespace);
  if (f.pod) q = q.where("c.pod", "=", f.pod);
  if (f.image) q = q.where("c.image", "=", f.image);
  if (f.signature) q = q.where("a.signature_hash", "=", f.signature);
  if (f.since) q = q.where("a.created_at", ">=", f.since);
  if (cursor) {
    q = q.where((eb) => eb.or([eb("a.created_at", "<", cursor.created_at), eb.and([eb("a.created_at", "=", cursor.created_at), eb("a.analysis_id", "<", cursor.analysis_id)])]));
  }
  const rows = await q
    .orderBy("a.created_at", "desc")
    .orderBy("a.analysis_id", "desc")
    .limit(limit + 1)
    .execute();
  const items = rows.slice(0, limit).map(split);
  const last = items[items.length - 1];
  return { items, next: rows.length > limit && last ? { created_at: last.created_at, analysis_id: last.analysis_id } : null };
}

export async function getAnalysis(db: Kysely<Database>, analysisId: string): Promise<AnalysisWithDump | undefined> {
  const r = await selectAnalyses(db).where("a.analysis_id", "=", analysisId).executeTakeFirst();
  return r ? split(r) : undefined;
}

// ---------------------------------------------------------------- groups

export interface GroupFacts {
  signature_hash: string;
  signature_text: string;
  frames: string[];
  count: number;
  first_seen: string;
  last_seen: string;
  pods: number;
  namespaces: number;
  images: number;
  nodes: number;
  resolved_at: string | null;
  latest_analysis_id: string;
  best_analysis_id: string;
  best_quality: number | null;
}

function groupAggregates(db: Kysely<Database>) {
  return db
    .selectFrom("analysis as a")
    .innerJoin("coredump as c", "c.id", "a.coredump_id")
    .innerJoin("crash_group as g", "g.signature_hash", "a.signature_hash")
    .select((eb) => [
      "g.signature_hash",
      "g.signature_text",
      "g.frames_json",
      "g.resolved_at",
      eb.fn.countAll<number>().as("count"),
      eb.fn.min("c.received_at").as("first_seen"),
      eb.fn.max("c.received_at").as("last_seen"),
      sql<number>`count(distinct c.pod)`.as("pods"),
      sql<number>`count(distinct c.namespace)`.as("namespaces"),
      sql<number>`count(distinct c.image)`.as("images"),
      sql<number>`count(distinct c.node)`.as("nodes"),
    ])
    .groupBy(["g.signature_hash", "g.signature_text", "g.frames_json", "g.resolved_at"]);
}

type GroupColumns = Pick<GroupFacts, "signature_hash" | "signature_text" | "frames" | "resolved_at" | "count" | "first_seen" | "last_seen" | "pods" | "namespaces" | "images">;

/** The columns every aggregate row of a group has, typed (a count is bigint text on PostgreSQL). */
function groupColumns(
  r: Pick<GroupColumns, "signature_hash" | "signature_text" | "resolved_at"> & {
    frames_json: string;
    count: unknown;
    first_seen: unknown;
    last_seen: unknown;
    pods: unknown;
    namespaces: unknown;
    images: unknown;
  },
): GroupColumns {
  return {
    signature_hash: r.signature_hash,
    signature_text: r.signature_text,
    frames: JSON.parse(r.frames_json) as string[],
    resolved_at: r.resolved_at,
    count: Number(r.count),
    first_seen: String(r.first_seen),
    last_seen: String(r.last_seen),
    pods: Number(r.pods),
    namespaces: Number(r.namespaces),
    images: Number(r.images),
  };
}

async function withAnalyses(db: Kysely<Database>, rows: Array<Awaited<ReturnType<ReturnType<typeof groupAggregates>["execute"]>>[number]>): Promise<GroupFacts[]> {
  const out: GroupFacts[] = [];
  for (const r of rows) {
    // Two indexed lookups per group; a page holds at most 100 groups.
    const base = db
      .selectFrom("analysis as a")
      .innerJoin("coredump as c", "c.id", "a.coredump_id")
      .select(["a.analysis_id", "a.quality"])
      .where("a.signature_hash", "=", r.signature_hash);
    const latest = await base.orderBy("c.received_at", "desc").orderBy("a.analysis_id", "desc").executeTakeFirstOrThrow();
    const best = await base.orderBy("a.quality", "desc").orderBy("c.received_at", "desc").orderBy("a.analysis_id", "desc").executeTakeFirstOrThrow();
    out.push({
      ...groupColumns(r),
      nodes: Number(r.nodes),
      latest_analysis_id: latest.analysis_id,
      best_analysis_id: best.analysis_id,
      best_quality: best.quality,
    });
  }
  return out;
}

/** Most recently seen first. */
export async function listGroups(db: Kysely<Database>, limit: number, offset: number): Promise<{ items: GroupFacts[]; more: boolean }> {
  const rows = await groupAggregates(db)
    .orderBy("last_seen", "desc")
    .orderBy("g.signature_hash")
    .limit(limit + 1)
    .offset(offset)
    .execute();
  return { items: await withAnalyses(db, rows.slice(0, limit)), more: rows.length > limit };
}

export interface GroupDetail extends GroupFacts {
  /** The distinct values (at most 100 of each), for the group's page. */
  pod_names: string[];
  namespace_names: string[];
  image_names: string[];
  node_names: string[];
}

export async function getGroup(db: Kysely<Database>, hash: string): Promise<GroupDetail | undefined> {
  const rows = await groupAggregates(db).where("g.signature_hash", "=", hash).execute();
  const [facts] = await withAnalyses(db, rows);
  if (!facts) return undefined;
  const distinct = async (col: "c.pod" | "c.namespace" | "c.image" | "c.node") => {
    const r = await db
      .selectFrom("analysis as a")
      .innerJoin("coredump as c", "c.id", "a.coredump_id")
      .select(`${col} as v`)
      .distinct()
      .where("a.signature_hash", "=", hash)
      .where(col, "is not", null)
      .orderBy("v")
      .limit(100)
      .execute();
    return r.map((x) => String(x.v));
  };
  return {
    ...facts,
    pod_names: await distinct("c.pod"),
    namespace_names: await distinct("c.namespace"),
    image_names: await distinct("c.image"),
    node_names: await distinct("c.node"),
  };
}

/** Marks a group resolved (now) or not; false when the group is unknown. */
export async function setResolved(db: Kysely<Database>, hash: string, resolvedAt: string | null): Promise<boolean> {
  const r = await db.updateTable("crash_group").set({ resolved_at: resolvedAt }).where("signature_hash", "=", hash).executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

// ---------------------------------------------------------------- crash browser (api/ui)

/** The group list's filters; every one narrows the occurrences that are counted. */
export interface BrowseFilters {
  namespace?: string;
  image?: string;
  /** Signal name (SIGSEGV), as the result document has it. */
  signal?: string;
  /** ISO time: occurrences received at or after it. */
  since?: string;
}

/** A crash group as the list shows it: counts over the filtered occurrences, state over all of them. */
export type BrowseGroup = GroupColumns & {
  /** Every occurrence, unfiltered: the group's state is decided by these. */
  total: number;
  total_last_seen: string;
};

function browseCondition(f: BrowseFilters) {
  const parts = [sql`1 = 1`];
  if (f.namespace) parts.push(sql`c.namespace = ${f.namespace}`);
  if (f.image) parts.push(sql`c.image = ${f.image}`);
  if (f.signal) parts.push(sql`a.signal_name = ${f.signal}`);
  if (f.since) parts.push(sql`c.received_at >= ${f.since}`);
  return sql<boolean>`(${sql.join(parts, sql` and `)})`;
}

/**
 * Every crash group with at least one occurrence matching `f`, in one
 * aggregate query (conditional aggregates: the filtered counts beside the
 * unfiltered ones). The caller sorts, filters by state and pages: a
 * deployment has far fewer groups than analyses.
 */
export async function browseGroups(db: Kysely<Database>, kind: DialectKind, f: BrowseFilters): Promise<BrowseGroup[]> {
  const cond = browseCondition(f);
  const rows = await db
    .selectFrom("analysis as a")
    .innerJoin("coredump as c", "c.id", "a.coredump_id")
    .innerJoin("crash_group as g", "g.signature_hash", "a.signature_hash")
    .select([
      "g.signature_hash",
      "g.signature_text",
      "g.frames_json",
      "g.resolved_at",
      sql<number>`count(*)`.as("total"),
      sql<string>`max(c.received_at)`.as("total_last_seen"),
      sql<number>`count(case when ${cond} then 1 end)`.as("count"),
      sql<string>`min(case when ${cond} then c.received_at end)`.as("first_seen"),
      sql<string>`max(case when ${cond} then c.received_at end)`.as("last_seen"),
      sql<number>`count(distinct case when ${cond} then c.pod end)`.as("pods"),
      sql<number>`count(distinct case when ${cond} then c.namespace end)`.as("namespaces"),
      sql<number>`count(distinct case when ${cond} then c.image end)`.as("images"),
    ])
    .groupBy(["g.signature_hash", "g.signature_text", "g.frames_json", "g.resolved_at"])
    .having(sql<boolean>`count(case when ${cond} then 1 end) > 0`)
    .execute();
  return rows.map((r) => ({ ...groupColumns(r), total: Number(r.total), total_last_seen: String(r.total_last_seen) }));
}

/** Occurrences per UTC day (YYYY-MM-DD) since `sinceDay`, for the given groups, under the same filters. */
export async function browseDays(
  db: Kysely<Database>,
  kind: DialectKind,
  f: BrowseFilters,
  hashes: readonly string[],
  sinceDay: string,
): Promise<Array<{ signature_hash: string; day: string; n: number }>> {
  if (hashes.length === 0) return [];
  const rows = await db
    .selectFrom("analysis as a")
    .innerJoin("coredump as c", "c.id", "a.coredump_id")
    .select(["a.signature_hash", sql<string>`substr(c.received_at, 1, 10)`.as("day"), sql<number>`count(*)`.as("n")])
    .where("a.signature_hash", "in", [...hashes])
    .where("c.received_at", ">=", sinceDay)
    .where(browseCondition(f))
    .groupBy(["a.signature_hash", sql`substr(c.received_at, 1, 10)`])
    .execute();
  return rows.map((r) => ({ signature_hash: String(r.signature_hash), day: r.day, n: Number(r.n) }));
}

/** The best-symbolized analysis of each group (highest quality, then newest) with its result document. */
export async function bestResults(db: Kysely<Database>, hashes: readonly string[]): Promise<Map<string, { analysis_id: string; result_json: string | null }>> {
  const out = new Map<string, { analysis_id: string; result_json: string | null }>();
  for (const hash of hashes) {
    const r = await db
      .selectFrom("analysis as a")
      .innerJoin("coredump as c", "c.id", "a.coredump_id")
      .select(["a.analysis_id", "a.result_json"])
      .where("a.signature_hash", "=", hash)
      .orderBy("a.quality", "desc")
      .orderBy("c.received_at", "desc")
      .orderBy("a.analysis_id", "desc")
      .executeTakeFirst();
    if (r) out.set(hash, r);
  }
  return out;
}

/**
 * The values the list's namespace and image filters offer (at most 200 of
 * each). Signals are not read from the documents here: parsing every result
 * would cost more than the rest of the page (bench/ui.ts); the page offers
 * the fixed set of fatal signals.
 */
export async function browseFacets(db: Kysely<Database>): Promise<{ namespaces: string[]; images: string[] }> {
  const column = async (col: "c.namespace" | "c.image") => {
    const r = await db.selectFrom("coredump as c").select(`${col} as v`).distinct().where(col, "is not", null).orderBy("v").limit(200).execute();
    return r.map((x) => String(x.v));
  };
  return { namespaces: await column("c.namespace"), images: await column("c.image") };
}

/** How many analyses are in each status, and how many reports wait in the outbox. */
export async function queueCounts(db: Kysely<Database>): Promise<Record<AnalysisStatus, number> & { unpublished: number }> {
  const rows = await db
    .selectFrom("analysis")
    .select(["status", sql<number>`count(*)`.as("n")])
    .groupBy("status")
    .execute();
  const counts = { queued: 0, running: 0, completed: 0, failed: 0, unpublished: await countPending(db) };
  for (const r of rows) counts[r.status] = Number(r.n);
  return counts;
}
