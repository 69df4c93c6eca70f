/** Prometheus metrics of one worker process (prom-client, own registry). */
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
}

export function createMetrics(): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: "coresight_worker_process_" });
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
    settled: new client.Counter({ name: "coresight_worker_messages_settled_total", help: "Messages settled, by action (ack, nak, term)", labelNames: ["action"] as const, registers: [registry] }),
    stageSeconds: new client.Histogram({
      name: "coresight_worker_stage_duration_seconds",
      help: "Duration of each job stage",
      labelNames: ["stage"] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers: [registry],
    }),
    inFlight: new client.Gauge({ name: "coresight_worker_jobs_in_flight", help: "Jobs being processed now", registers: [registry] }),
    bytesDownloaded: new client.Counter({ name: "coresight_worker_downloaded_bytes_total", help: "Dump bytes transferred", registers: [registry] }),
  };
  return m;
}
