/**
 * NATS connection and the JetStream topology the pool shares: one stream
 * (NATS_STREAM, subject NATS_SUBJECT) and one durable pull consumer
 * (NATS_CONSUMER) that every worker process binds, so each event is handed to
 * exactly one worker at a time and redelivered if that worker dies.
 *
 * One owner of the consumer's settings: `coresight-worker queue apply`
 * (`applyQueue`) creates the stream, creates or updates the consumer, and
 * creates the nats sink's result stream. `run` only checks them
 * (`checkQueue`): it warns on drift and changes nothing, and creates what is
 * missing only when NATS_CREATE_STREAM allows, so a first start on an empty
 * server still works. With NATS_CREATE_STREAM=false a missing stream or
 * consumer is a configuration error (exit 3), never a hang.
 */
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, jetstreamManager, type ConsumerConfig, type JetStreamManager } from "@nats-io/jetstream";
import { ConfigError, type Config } from "../lib/config.js";
import type { Logger } from "../lib/log.js";
import { ensureStream, isNotFound } from "../lib/nats.js";

// The connection and the stream are shared with the CoreSight API (lib/nats.ts).
export { connectNats } from "../lib/nats.js";

/** The consumer's own delivery limit: none (-1). */
export const SERVER_MAX_DELIVER = -1;

/** The consumer the pool binds, as NATS_* describe it. */
export function wantedConsumer(cfg: Config["nats"]): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    durable_name: cfg.consumer,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(cfg.ackWaitMs),
    // Unlimited on the server: the worker gives up itself at NATS_MAX_DELIVER
    // (worker/settle.ts). Were the server's limit the worker's, the last
    // delivery of a worker that died would never be delivered again and the
    // message would sit in the work-queue stream forever, with no result.
    max_deliver: SERVER_MAX_DELIVER,
    filter_subject: cfg.subject,
  };
}

/** The settings of an existing consumer that differ from `wantedConsumer` (empty: none). */
export function consumerDrift(have: Partial<ConsumerConfig>, cfg: Config["nats"]): Record<string, { have: unknown; want: unknown }> {
  const want = wantedConsumer(cfg);
  const drift: Record<string, { have: unknown; want: unknown }> = {};
  for (const k of ["ack_policy", "ack_wait", "max_deliver", "filter_subject"] as const) {
    if (have[k] !== want[k]) drift[k] = { have: have[k] ?? null, want: want[k] };
  }
  return drift;
}

async function addConsumer(jsm: JetStreamManager, cfg: Config["nats"], logger: Logger): Promise<"created" | "exists"> {
  try {
    await jsm.consumers.add(cfg.stream, wantedConsumer(cfg));
    logger.info({ consumer: cfg.consumer, stream: cfg.stream }, "consumer created");
    return "created";
  } catch (e: unknown) {
    // Another worker of the pool created it at the same moment: fine.
    if (!/already|exists/i.test(String(e))) throw e;
    return "exists";
  }
}

/**
 * Creates the stream (when NATS_CREATE_STREAM allows) and the durable
 * consumer if missing, and aligns an existing consumer's settings. The
 * owner's operation: `queue apply` (forcing creation), `make demo`, `replay`.
 */
export async function ensureQueue(nc: NatsConnection, cfg: Config["nats"], logger: Logger): Promise<{ consumer: "created" | "updated" | "unchanged" }> {
  await ensureStream(nc, cfg, logger);
  const jsm = await jetstreamManager(nc);
  let info;
  try {
    info = await jsm.consumers.info(cfg.stream, cfg.consumer);
  } catch (e: unknown) {
    if (!isNotFound(e)) throw e;
    return { consumer: (await addConsumer(jsm, cfg, logger)) === "created" ? "created" : "unchanged" };
  }
  const drift = consumerDrift(info.config, cfg);
  if (Object.keys(drift).length === 0) return { consumer: "unchanged" };
  const want = wantedConsumer(cfg);
  // ack_policy cannot change on a live consumer; the rest can.
  await jsm.consumers.update(cfg.stream, cfg.consumer, { ack_wait: want.ack_wait, max_deliver: want.max_deliver, filter_subject: want.filter_subject });
  logger.info({ consumer: cfg.consumer, ack_wait_ms: cfg.ackWaitMs, server_max_deliver: SERVER_MAX_DELIVER, worker_max_deliver: cfg.maxDeliver, drift }, "consumer updated");
  return { consumer: "updated" };
}

/**
 * `coresight-worker queue apply`: the stream, the consumer, and (with the nats
 * sink, `resultSubject` given) the result stream, whatever NATS_CREATE_STREAM says.
 */
export async function applyQueue(nc: NatsConnection, cfg: Config["nats"], resultSubject: string | null, logger: Logger) {
  const owner = { ...cfg, createStream: true };
  const queue = await ensureQueue(nc, owner, logger);
  if (resultSubject !== null) await ensureResultStream(nc, owner, resultSubject, logger);
  return queue;
}

const APPLY_HINT = "run `coresight-worker queue apply` (the Helm chart's hook Job does), or set NATS_CREATE_STREAM=true";

/**
 * What `run` does at start-up: checks the stream, the consumer and (nats sink)
 * the result stream. An existing consumer is never changed: settings that
 * differ from NATS_* are logged as one warning. Missing pieces are created
 * when NATS_CREATE_STREAM allows; otherwise a ConfigError (exit 3).
 */
export async function checkQueue(nc: NatsConnection, cfg: Config["nats"], resultSubject: string | null, logger: Logger): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(cfg.stream);
  } catch (e: unknown) {
    if (!isNotFound(e)) throw e;
    if (!cfg.createStream) throw new ConfigError("NATS_STREAM", `stream ${cfg.stream} does not exist and NATS_CREATE_STREAM is false; ${APPLY_HINT}`);
    await ensureStream(nc, cfg, logger);
  }
  try {
    const info = await jsm.consumers.info(cfg.stream, cfg.consumer);
    const drift = consumerDrift(info.config, cfg);
    if (Object.keys(drift).length > 0) {
      logger.warn(
        { consumer: cfg.consumer, stream: cfg.stream, drift },
        `consumer settings differ from this worker's NATS_* configuration; left as they are: ${APPLY_HINT.split(",")[0]}`,
      );
    }
  } catch (e: unknown) {
    if (!isNotFound(e)) throw e;
    if (!cfg.createStream) throw new ConfigError("NATS_CONSUMER", `consumer ${cfg.consumer} on stream ${cfg.stream} does not exist and NATS_CREATE_STREAM is false; ${APPLY_HINT}`);
    await addConsumer(jsm, cfg, logger);
  }
  if (resultSubject !== null) await ensureResultStream(nc, cfg, resultSubject, logger);
}

/**
 * The stream that keeps the nats sink's results (subjects `<RESULT_SUBJECT>.>`),
 * created when missing and NATS_CREATE_STREAM allows: the sink publishes
 * through JetStream and waits for the stream's ack, so a result counts as
 * stored only once a stream has persisted it. Limits retention, 7 days, and
 * the same one-hour duplicate window (Nats-Msg-Id) as the event stream.
 */
export async function ensureResultStream(nc: NatsConnection, cfg: Config["nats"], resultSubject: string, logger: Logger): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(cfg.resultStream);
    return;
  } catch (e: unknown) {
    if (!isNotFound(e)) throw e;
    if (!cfg.createStream) {
      throw new ConfigError("NATS_RESULT_STREAM", `result stream ${cfg.resultStream} does not exist and NATS_CREATE_STREAM is false; ${APPLY_HINT}`);
    }
  }
  try {
    await jsm.streams.add({
      name: cfg.resultStream,
      subjects: [`${resultSubject}.>`],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: nanos(7 * 24 * 60 * 60 * 1000),
      duplicate_window: nanos(60 * 60 * 1000),
    });
    logger.info({ stream: cfg.resultStream, subjects: `${resultSubject}.>` }, "result stream created");
  } catch (e: unknown) {
    // Another worker of the pool created it at the same moment: fine.
    if (!/already|exists/i.test(String(e))) throw e;
  }
}
