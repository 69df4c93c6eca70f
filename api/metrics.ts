/** Prometheus metrics of the CoreSight API (prom-client, own registry), served at /metrics. */
import client from "prom-client";

export interface ApiMetrics {
  registry: client.Registry;
  reports: client.Counter<"outcome">;
  rejected: client.Counter<"status">;
  results: client.Counter<"status" | "outcome">;
  published: client.Counter<"duplicate">;
  publishFailures: client.Counter<string>;
  outboxPending: client.Gauge<string>;
  requestSeconds: client.Histogram<"route">;
}

export function createApiMetrics(pending: () => Promise<number>): ApiMetrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: "coresight_api_process_" });
  return {
    registry,
    reports: new client.Counter({
      name: "coresight_api_reports_total",
      help: "Reports accepted, by outcome (created, duplicate)",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
    rejected: new client.Counter({ name: "coresight_api_rejected_total", help: "Requests answered with a 4xx, by status", labelNames: ["status"] as const, registers: [registry] }),
    results: new client.Counter({
      name: "coresight_api_results_total",
      help: "Worker PUTs, by status and outcome",
      labelNames: ["status", "outcome"] as const,
      registers: [registry],
    }),
    published: new client.Counter({
      name: "coresight_api_outbox_published_total",
      help: "Outbox rows published to JetStream",
      labelNames: ["duplicate"] as const,
      registers: [registry],
    }),
    publishFailures: new client.Counter({ name: "coresight_api_outbox_publish_failures_total", help: "Failed outbox publish attempts", registers: [registry] }),
    outboxPending: new client.Gauge({
      name: "coresight_api_outbox_pending",
      help: "Reports committed but not yet on the queue",
      registers: [registry],
      async collect() {
        this.set(await pending().catch(() => -1));
      },
    }),
    requestSeconds: new client.Histogram({
      name: "coresight_api_request_duration_seconds",
      help: "Request duration by route",
      labelNames: ["route"] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
  };
}
