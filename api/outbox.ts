/**
 * The outbox publisher: moves committed reports from the `outbox` table onto
 * the JetStream stream the worker pool consumes, in commit order.
 *
 * A row is marked published only after JetStream's PubAck (the stream has
 * stored the message). Each publish carries `Nats-Msg-Id` (the analysis id,
 * or a reprocess id), so a row published twice (the API died between PubAck
 * and the mark) is dropped by the stream's duplicate window, and the
 * `CoreSight-Analysis-Id` header, which the worker takes as the job's id.
 *
 * Any failure (NATS down at start, disconnected, no stream, PubAck timeout)
 * leaves the row pending and retries with backoff: an outage delays analysis
 * and loses nothing. The loop never throws; stop() ends it.
 *
 * Several API replicas on one PostgreSQL database: each batch is claimed
 * with `SELECT ... FOR UPDATE SKIP LOCKED` in a transaction that lasts until
 * the batch's marks commit, so replicas publish disjoint rows instead of
 * all publishing every row (which the duplicate window would mostly, but not
 * past its 2 minutes, absorb). SQLite is one file on one host: a
 * transaction held across publishes would block ingest, so there the batch
 * is read and marked without one.
 */
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import type { ApiConfig } from "../lib/config.js";
import { toError } from "../lib/errors.js";
import { ANALYSIS_ID_HEADER } from "../lib/events.js";
import type { Logger } from "../lib/log.js";
import { connectNats, ensureStream } from "../lib/nats.js";
import type { Kysely } from "kysely";
import type { Db } from "./db/connect.js";
import { markPublished, markPublishFailed, pendingOutbox } from "./db/queries.js";
import type { Database, OutboxRow } from "./db/schema.js";
import { createWaker } from "./loop.js";
import type { ApiMetrics } from "./metrics.js";

export interface Publisher {
  /** Publish now instead of at the next poll (a report was just committed). */
  wake(): void;
  /** null when connected to NATS, else why not. */
  natsProblem(): string | null;
  stop(): Promise<void>;
}

const BATCH = 100;
const POLL_MS = 1000;
const MAX_BACKOFF_MS = 10_000;

export function startPublisher(opts: { db: Db; config: Pick<ApiConfig, "nats" | "publishTimeoutMs">; logger: Logger; metrics: ApiMetrics; now?: () => string }): Publisher {
  const { db, config, metrics } = opts;
  const log = opts.logger.child({ component: "outbox" });
  const now = opts.now ?? (() => new Date().toISOString());
  let nc: NatsConnection | null = null;
  let connected = false;
  let problem: string | null = "not connected yet";
  let streamReady = false;
  let stopped = false;
  const waker = createWaker();
  const wake = () => waker.wake();
  const pause = (ms: number) => (stopped ? Promise.resolve() : waker.pause(ms));

  async function connect(): Promise<NatsConnection> {
    // A server dying mid-handshake must not stall the outbox for nats.js's default 20 s.
    const c = await connectNats(config.nats, "coresight-api", config.publishTimeoutMs);
    connected = true;
    problem = null;
    void (async () => {
      for await (const s of c.status()) {
        if (s.type === "disconnect") {
          connected = false;
          problem = "disconnected from NATS";
          log.warn({ type: s.type }, "NATS disconnected; reports are kept in the outbox");
        } else if (s.type === "reconnect") {
          connected = true;
          problem = null;
          streamReady = false;
          wake();
          log.info({ type: s.type }, "NATS reconnected; publishing the outbox");
        }
      }
    })().catch(() => undefined);
    return c;
  }

  async function publishBatch(c: NatsConnection): Promise<number> {
    if (!streamReady) {
      await ensureStream(c, config.nats, log);
      streamReady = true;
    }
    const js = jetstream(c);
    const publishRows = async (q: Kysely<Database>, rows: OutboxRow[]): Promise<{ row: OutboxRow; error: unknown } | null> => {
      for (const row of rows) {
        const h = natsHeaders();
        h.set(ANALYSIS_ID_HEADER, row.analysis_id);
        try {
          const ack = await js.publish(config.nats.subject, row.payload, { msgID: row.msg_id, headers: h, timeout: config.publishTimeoutMs });
          await markPublished(q, row.id, now());
          metrics.published.inc({ duplicate: String(ack.duplicate) });
          log.info({ analysis_id: row.analysis_id, msg_id: row.msg_id, seq: ack.seq, duplicate: ack.duplicate }, "report queued for analysis");
        } catch (error: unknown) {
          // Marks of the rows before it stand (committed with the batch); this one and the rest stay pending.
          return { row, error };
        }
      }
      return null;
    };
    let count = 0;
    let failed: { row: OutboxRow; error: unknown } | null;
    if (db.kind === "postgres") {
      failed = await db.kysely.transaction().execute(async (trx) => {
        const rows = await pendingOutbox(trx, BATCH, { skipLocked: true });
        count = rows.length;
        return publishRows(trx, rows);
      });
    } else {
      const rows = await pendingOutbox(db.kysely, BATCH);
      count = rows.length;
      failed = await publishRows(db.kysely, rows);
    }
    if (failed) {
      // The stream may have gone (a new NATS without state): ensure it again next time.
      streamReady = false;
      await markPublishFailed(db.kysely, failed.row.id, toError(failed.error).message).catch(() => undefined);
      throw failed.error;
    }
    return count;
  }

  const loop = (async () => {
    let backoff = 500;
    while (!stopped) {
      try {
        nc ??= await connect();
        const n = await publishBatch(nc);
        backoff = 500;
        if (n < BATCH) await pause(POLL_MS);
      } catch (e: unknown) {
        const err = toError(e);
        if (!connected) problem = `cannot reach NATS: ${err.message}`;
        metrics.publishFailures.inc();
        log.warn({ err: err.message, retry_in_ms: backoff }, "outbox publish failed; retrying");
        await pause(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  })();

  let stopping: Promise<void> | null = null;
  return {
    wake,
    natsProblem: () => (connected ? null : problem),
    stop() {
      stopping ??= (async () => {
        stopped = true;
        wake();
        await loop;
        if (nc) await nc.close().catch(() => undefined);
      })();
      return stopping;
    },
  };
}
