/**
 * The NATS connection and the JetStream stream shared by the two services
 * that talk through it: the CoreSight API publishes events onto the stream
 * (api/outbox.ts) and the worker pool consumes them (worker/queue.ts). Both
 * must agree on the stream's shape, so it is declared once, here.
 */
import fs from "node:fs/promises";
import { connect, credsAuthenticator, nanos, type NatsConnection, type ConnectionOptions } from "@nats-io/transport-node";
import { RetentionPolicy, StorageType, jetstreamManager } from "@nats-io/jetstream";
import type { Config } from "./config.js";
import type { Logger } from "./log.js";

/**
 * Connects with endless reconnects: a NATS restart must never end a service.
 * `connectTimeoutMs` bounds the first handshake (nats.js waits 20 s by default).
 */
export async function connectNats(cfg: Config["nats"], name: string, connectTimeoutMs?: number): Promise<NatsConnection> {
  const opts: ConnectionOptions = {
    servers: cfg.url.split(",").map((s) => s.trim()),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    ...(connectTimeoutMs === undefined ? {} : { timeout: connectTimeoutMs }),
  };
  if (cfg.credsFile) opts.authenticator = credsAuthenticator(await fs.readFile(cfg.credsFile));
  if (cfg.token) opts.token = cfg.token;
  if (cfg.tlsCaFile || cfg.tlsCertFile || cfg.tlsKeyFile) {
    opts.tls = {
      ...(cfg.tlsCaFile ? { caFile: cfg.tlsCaFile } : {}),
      ...(cfg.tlsCertFile ? { certFile: cfg.tlsCertFile } : {}),
      ...(cfg.tlsKeyFile ? { keyFile: cfg.tlsKeyFile } : {}),
    };
  }
  return connect(opts);
}

export function isNotFound(e: unknown): boolean {
  const msg = e instanceof Error ? e.message : String(e);
  return /not found/i.test(msg);
}

/** Creates the events stream (NATS_STREAM on NATS_SUBJECT) when missing and allowed. */
export async function ensureStream(nc: NatsConnection, cfg: Config["nats"], logger: Logger): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(cfg.stream);
  } catch (e: unknown) {
    if (!isNotFound(e)) throw e;
    if (!cfg.createStream) {
      throw new Error(`stream ${cfg.stream} does not exist and NATS_CREATE_STREAM is false`, { cause: e });
    }
    try {
      await jsm.streams.add({
        name: cfg.stream,
        subjects: [cfg.subject],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        // CoreDog never re-sends: keep de-duplication for an hour of replays.
        duplicate_window: nanos(60 * 60 * 1000),
      });
    } catch (e2: unknown) {
      // The API and a worker (or two workers) created it at the same moment: fine.
      if (!/already|exists/i.test(String(e2))) throw e2;
      return;
    }
    logger.info({ stream: cfg.stream, subject: cfg.subject }, "stream created");
  }
}
