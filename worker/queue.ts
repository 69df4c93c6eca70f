/**
 * NATS connection and the JetStream topology the pool shares: one stream
 * (NATS_STREAM, subject NATS_SUBJECT) and one durable pull consumer
 * (NATS_CONSUMER) that every worker process binds, so each event is handed to
 * exactly one worker at a time and redelivered if that worker dies.
 */
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import { AckPolicy, DeliverPolicy, jetstreamManager, type ConsumerConfig } from "@nats-io/jetstream";
import type { Config } from "../lib/config.js";
import type { Logger } from "../lib/log.js";
import { ensureStream, isNotFound } from "../lib/nats.js";

// The connection and the stream are shared with the CoreSight API (lib/nats.ts).
export { connectNats } from "../lib/nats.js";

/** Creates the stream (when allowed) and the durable consumer if missing; aligns the consumer's limits. */
export async function ensureQueue(nc: NatsConnection, cfg: Config["nats"], logger: Logger): Promise<void> {
  await ensureStream(nc, cfg, logger);
  const jsm = await jetstreamManager(nc);
  const wanted: Partial<ConsumerConfig> = {
    durable_name: cfg.consumer,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(cfg.ackWaitMs),
    max_deliver: cfg.maxDeliver,
    filter_subject: cfg.subject,
  };
  try {
    const info = await jsm.consumers.info(cfg.stream, cfg.consumer);
    if (info.config.ack_wait !== wanted.ack_wait || info.config.max_deliver !== wanted.max_deliver) {
      await jsm.consumers.update(cfg.stream, cfg.consumer, { ack_wait: wanted.ack_wait, max_deliver: wanted.max_deliver });
      logger.info({ consumer: cfg.consumer, ack_wait_ms: cfg.ackWaitMs, max_deliver: cfg.maxDeliver }, "consumer updated");
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
