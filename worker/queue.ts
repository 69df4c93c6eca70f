/**
 * NATS connection and the JetStream topology the pool shares: one stream
 * (NATS_STREAM, subject NATS_SUBJECT) and one durable pull consumer
 * (NATS_CONSUMER) that every worker process binds, so each event is handed to
 * exactly one worker at a time and redelivered if that worker dies.
 */
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, RetentionPolicy, StorageType, jetstreamManager, type ConsumerConfig } from "@nats-io/jetstream";
import type { Config } from "../lib/config.js";
import type { Logger } from "../lib/log.js";
import { ensureStream, isNotFound } from "../lib/nats.js";

// The connection and the stream are shared with the CoreSight API (lib/nats.ts).
export { connectNats } from "../lib/nats.js";

/** The consumer's own delivery limit: none (-1). */
export const SERVER_MAX_DELIVER = -1;

/** Creates the stream (when allowed) and the durable consumer if missing; aligns the consumer's limits. */
export async function ensureQueue(nc: NatsConnection, cfg: Config["nats"], logger: Logger): Promise<void> {
  await ensureStream(nc, cfg, logger);
  const jsm = await jetstreamManager(nc);
  const wanted: Partial<ConsumerConfig> = {
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
  try {
    const info = await jsm.consumers.info(cfg.stream, cfg.consumer);
    if (info.config.ack_wait !== wanted.ack_wait || info.config.max_deliver !== wanted.max_deliver) {
      await jsm.consumers.update(cfg.stream, cfg.consumer, { ack_wait: wanted.ack_wait, max_deliver: wanted.max_deliver });
      logger.info({ consumer: cfg.consumer, ack_wait_ms: cfg.ackWaitMs, server_max_deliver: SERVER_MAX_DELIVER, worker_max_deliver: cfg.maxDeliver }, "consumer updated");
    }
  } catch (e: unknown) {
    if (!isNotFound(e)) throw e;
    try {
      await jsm.consumers.add(cfg.stream, wanted);
      logger.info({ consumer: cfg.consumer, stream: cfg.stream }, "consumer created");
    } catch (e2: unknown) {
      // Another worker of the pool created it at the same moment: fine.
      if (!/already|exists/i.test(String(e2))) throw e2;
    }
  }
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
      throw new Error(`result stream ${cfg.resultStream} does not exist and NATS_CREATE_STREAM is false`, { cause: e });
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
