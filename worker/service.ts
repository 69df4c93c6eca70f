/**
 * The worker service: wires config, logger, NATS, S3, sinks, gdb and the
 * consumer loop together, and takes them apart again in order on stop().
 *
 * Start-up order: probes first (alive, not ready), then NATS, waited for as
 * long as it takes (retrying with a capped backoff, one log line a try; a
 * pod starting before NATS must not crash-loop), then the queue check
 * (worker/queue.ts `checkQueue`: a missing stream with NATS_CREATE_STREAM=false
 * is a ConfigError, after which everything opened is closed again so the
 * process exits instead of hanging), then the consumer. Ready only once the
 * consumer is bound and NATS connected.
 */
import os from "node:os";
import { execa } from "execa";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import type { Config } from "../lib/config.js";
import { toError } from "../lib/errors.js";
import { createLogger, type Logger } from "../lib/log.js";
import { createSinks } from "../lib/results/sinks.js";
import { makeS3Client } from "../lib/storage/s3.js";
import { sweepWorkDir } from "../lib/storage/workDir.js";
import { VERSION } from "../lib/version.js";
import { analysisSettings, analyzeDump } from "../lib/analyze.js";
import { prestartGdb, stopPrestartedGdb } from "../lib/gdb/launch.js";
import { QueueConsumer } from "./consumer.js";
import { startProbeServer, workDirWritable, type ProbeServer } from "./http.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { createDeduplicator, openDedupStore } from "../lib/dedup/store.js";
import { createPipeline } from "./pipeline.js";
import { checkQueue, connectNats } from "./queue.js";

/** start-up was cancelled (a signal while waiting for NATS). */
export class StartupAborted extends Error {
  constructor() {
    super("start-up cancelled");
    this.name = "StartupAborted";
  }
}

/** Delay before connection try `n` (1-based): 1, 2, 4, then 5 s. */
export function connectRetryDelayMs(n: number): number {
  return Math.min(5000, 1000 * 2 ** Math.max(0, n - 1));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

export interface Service {
  logger: Logger;
  metrics: Metrics;
  nc: NatsConnection;
  consumer: QueueConsumer;
  probe: ProbeServer | null;
  /** Graceful stop: drain in-flight jobs within the grace period. Idempotent. */
  stop(): Promise<void>;
  /** Resolves when the consumer loop ends. */
  done: Promise<void>;
}

/** Checks that gdb runs; null when fine, else the reason. */
export async function gdbProblem(gdbPath: string): Promise<string | null> {
  try {
    await execa(gdbPath, ["--version"], { timeout: 10_000 });
    return null;
  } catch (e: unknown) {
    return `gdb not usable (${gdbPath}): ${toError(e).message.split("\n")[0]}`;
  }
}

/**
 * Starts the worker. `opts.signal` cancels a start-up still waiting for NATS
 * (StartupAborted). Throws ConfigError when the queue is missing and may not
 * be created; whatever was opened by then is closed first.
 */
export async function startService(config: Config, opts: { logger?: Logger; fetch?: typeof fetch; signal?: AbortSignal } = {}): Promise<Service> {
  const logger = opts.logger ?? createLogger({ level: config.logLevel, file: config.logFile, base: { pid: process.pid, host: os.hostname() } });
  const metrics = createMetrics({ version: VERSION, concurrency: config.concurrency });
  const workerName = `${os.hostname()}:${process.pid}`;
  logger.info(
    {
      version: VERSION,
      nats: config.nats.url,
      stream: config.nats.stream,
      consumer: config.nats.consumer,
      concurrency: config.concurrency,
      sinks: config.resultSinks,
      work_dir: config.workDir,
      log_file: config.logFile || null,
    },
    "coresight-worker starting",
  );

  const swept = await sweepWorkDir(config.workDir);
  if (swept > 0) logger.info({ removed: swept }, "removed leftover job directories from an earlier run");
  const gdbIssue = await gdbProblem(config.gdb.path);
  if (gdbIssue) logger.error(gdbIssue);

  // Probes first: /healthz answers while NATS is awaited, /readyz says why not ready.
  let phase: string | null = "connecting to NATS";
  let nc: NatsConnection | null = null;
  let natsConnected = false;
  let probe: ProbeServer | null = null;
  if (config.metricsPort > 0) {
    probe = await startProbeServer(config.metricsPort, metrics, {
      nats: () => (phase ? `starting: ${phase}` : nc?.isClosed() ? "NATS connection closed" : natsConnected ? null : "NATS disconnected; reconnecting"),
      gdb: () => gdbIssue,
      work_dir: () => workDirWritable(config.workDir),
    });
    logger.info({ port: probe.port }, "probes listening on /healthz /readyz /metrics");
  }
  const closeEarly = async () => {
    await nc?.close().catch(() => undefined);
    await probe?.close().catch(() => undefined);
    logger.flush();
  };

  for (let attempt = 1; nc === null; attempt++) {
    if (opts.signal?.aborted) {
      await closeEarly();
      throw new StartupAborted();
    }
    try {
      nc = await connectNats(config.nats, `coresight-worker ${workerName}`, 5000);
    } catch (e: unknown) {
      const delay = connectRetryDelayMs(attempt);
      logger.warn({ nats: config.nats.url, attempt, retry_in_ms: delay, err: toError(e).message }, "NATS not reachable; waiting for it (not ready)");
      await sleep(delay, opts.signal);
    }
  }
  natsConnected = true;
  const conn = nc;
  logger.info({ nats: config.nats.url }, "NATS connected");
  // Readiness follows the connection: a worker that cannot reach NATS takes
  // no work, and its orchestrator should know.
  void (async () => {
    for await (const s of conn.status()) {
      if (s.type === "disconnect") natsConnected = false;
      if (s.type === "reconnect") natsConnected = true;
      if (s.type === "disconnect" || s.type === "reconnect") logger.warn({ nats: s.type }, `NATS ${s.type}`);
    }
  })().catch(() => undefined);
  let natsConsumer;
  let dedup: ReturnType<typeof createDeduplicator> | null = null;
  try {
    phase = "checking the stream and consumer";
    await checkQueue(conn, config.nats, config.resultSinks.includes("nats") ? config.resultSubject : null, logger);
    natsConsumer = await jetstream(conn).consumers.get(config.nats.stream, config.nats.consumer);
    if (config.dedup.enabled) {
      phase = "opening the crash-storm bucket";
      const bucket = await openDedupStore(conn, config.dedup);
      dedup = createDeduplicator(bucket, {
        after: config.dedup.after,
        onError: (what, e) => logger.warn({ bucket: config.dedup.bucket, err: toError(e).message }, `crash-storm bucket ${what} failed; analyzing fully`),
      });
      logger.info({ bucket: config.dedup.bucket, after: config.dedup.after, ttl_ms: config.dedup.ttlMs }, "crash-storm deduplication on");
    }
  } catch (e: unknown) {
    await closeEarly();
    throw e;
  }
  const js = jetstream(conn);

  const s3 = await makeS3Client(config.s3);
  const store = createSinks(
    {
      sinks: [...config.resultSinks],
      api: config.api.url ? { url: config.api.url, token: config.api.token, timeoutMs: config.api.timeoutMs, putRunning: config.api.putRunning } : undefined,
      resultsDir: config.resultsDir,
      natsSubject: config.resultSubject,
    },
    {
      fetch: opts.fetch,
      logger,
      // Through JetStream: stored means a stream persisted it (PubAck), not just sent.
      publish: async (subject, data, hdrs) => {
        const h = natsHeaders();
        for (const [k, v] of Object.entries(hdrs)) h.set(k, v);
        await js.publish(subject, data, { headers: h, timeout: 10_000 });
      },
    },
  );

  // One settings object from the configuration, the same for every job (and for `analyze`).
  const settings = analysisSettings(config, s3);
  const pipeline = createPipeline({
    config,
    logger,
    store,
    s3,
    metrics,
    fetch: opts.fetch,
    workerName,
    analyze: (req) =>
      analyzeDump({
        ...settings,
        core: req.core,
        workDir: req.workDir,
        signal: req.signal,
        onProgress: req.onProgress,
        arrived: req.arrived,
        image: req.image,
        ...(req.onTimings ? { onTimings: req.onTimings } : {}),
        ...(dedup ? { dedup: dedup.forJob(req.analysisId) } : {}),
      }),
  });

  // gdb's start-up overlaps the wait for the next message and its download (lib/gdb/launch.ts).
  if (config.gdb.prestart) prestartGdb({ gdbPath: config.gdb.path, debuginfod: null, maxOutputBytes: config.gdb.maxOutputBytes }, { keep: true });
  const consumer = new QueueConsumer({ consumer: natsConsumer, config, logger, pipeline, metrics });
  const done = consumer.start();
  phase = null;

  logger.info("waiting for coredump.uploaded events");

  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      logger.info({ in_flight: consumer.activeJobs, grace_ms: config.shutdownGraceMs }, "shutting down: no new messages; draining in-flight jobs");
      const steps: Array<[string, () => Promise<unknown>]> = [
        ["consumer", () => consumer.stop(config.shutdownGraceMs)],
        ["gdb", async () => stopPrestartedGdb()],
        ["nats", () => conn.drain()],
        ["probes", async () => probe?.close()],
      ];
      for (const [name, step] of steps) {
        try {
          await step();
        } catch (e: unknown) {
          logger.warn({ step: name, err: toError(e).message }, "shutdown step failed");
        }
      }
      logger.info("coresight-worker stopped");
      logger.flush();
    })());

  return { logger, metrics, nc: conn, consumer, probe, stop, done };
}
