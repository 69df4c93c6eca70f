/**
 * Prometheus metrics of one worker process (prom-client, own registry).
 *
 * Naming follows the Prometheus conventions so that stock dashboards and
 * alerts work unchanged: the default process and Node.js metrics keep their
 * standard names (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
 * `nodejs_eventloop_lag_seconds`, …, no application prefix); everything the
 * worker itself counts is `coresight_worker_*`. `coresight_worker_build_info`
 * is the usual info gauge (always 1, the version as a label) and
 * `coresight_worker_concurrency` the number of jobs the process can run at
 * once, so `jobs_in_flight / concurrency` is the pool's utilisation.
 */
import client from "prom-client";

export interface Metrics {
  registry: client.Registry;
  received: client.Counter<string>;
  results: client.Counter<"status" | "error_code">;
  redeliveries: client.Counter<string>;
  settled: client.Counter<"action">;
  stageSeconds: client.Histogram<"stage">;
  inFlight: client.Gauge<string>;
  bytesDownloaded: client.Counter<string>;
  /** Jobs this process can run at once (WORKER_CONCURRENCY). */
  concurrency: client.Gauge<string>;
  buildInfo: client.Gauge<"version">;
}

export interface MetricsOptions {
  /** The worker's version, the `version` label of coresight_worker_build_info. */
  version?: string;
  /** WORKER_CONCURRENCY; also settable later through `concurrency.set()`. */
  concurrency?: number;
}

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const m: Metrics = {
    registry,
    received: new client.Counter({ name: "coresight_worker_messages_received_total", help: "Messages taken from the queue", registers: [registry] }),
    results: new client.Counter({
      name: "coresight_worker_results_total",
      help: "Results stored, by status and error code",
      labelNames: ["status", "error_code"] as const,
      registers: [registry],
    }),
    redeliveries: new client.Counter({ name: "coresight_worker_redeliveries_total", help: "Messages received with a delivery count above 1", registers: [registry] }),
    settled: new client.Counter({
      name: "coresight_worker_messages_settled_total",
      help: "Messages settled, by action (ack, nak, term)",
      labelNames: ["action"] as const,
      registers: [registry],
    }),
    stageSeconds: new client.Histogram({
      name: "coresight_worker_stage_duration_seconds",
      help: "Duration of each job stage",
      labelNames: ["stage"] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers: [registry],
    }),
    inFlight: new client.Gauge({ name: "coresight_worker_jobs_in_flight", help: "Jobs being processed now", registers: [registry] }),
    bytesDownloaded: new client.Counter({ name: "coresight_worker_downloaded_bytes_total", help: "Dump bytes transferred", registers: [registry] }),
    concurrency: new client.Gauge({ name: "coresight_worker_concurrency", help: "Jobs this process can run at once (WORKER_CONCURRENCY)", registers: [registry] }),
    buildInfo: new client.Gauge({
      name: "coresight_worker_build_info",
      help: "Always 1; the worker's version as a label",
      labelNames: ["version"] as const,
      registers: [registry],
    }),
  };
  m.buildInfo.set({ version: opts.version ?? "unknown" }, 1);
  if (opts.concurrency !== undefined) m.concurrency.set(opts.concurrency);
  return m;
}
