/**
 * Where results go: the CoreSight API (http), a directory (file), a NATS
 * subject (nats); any combination (RESULT_SINKS).
 *
 * Invariant the consumer relies on: `ResultStore.store` resolves only when
 * every configured sink has stored the document, so an ack after it can never
 * lose a result. Every sink is idempotent by analysis_id (PUT to the same
 * path, the same file name, the same Nats-Msg-Id), so a redelivery that
 * stores again is harmless.
 *
 * Failures: if any sink failed permanently the store throws PermanentError
 * (retrying cannot make every sink succeed); otherwise a failed sink makes it
 * throw TransientError("result_store_failed"), and the sinks that did store
 * simply store again on the redelivery.
 */
import type { Logger } from "pino";
import { CoreSightError, PermanentError, TransientError } from "../errors.js";
import { isSafeAnalysisId } from "../events.js";
import { createFileSink } from "./file.js";
import { createHttpSink } from "./http.js";
import { createNatsSink, type PublishFn } from "./nats.js";
import { errorOf, type RetryPolicy } from "../retry.js";
import { assertSafeAnalysisId, type ResultSink, type ResultStore } from "./sink.js";

export interface SinksConfig {
  sinks: Array<"http" | "file" | "nats">;
  api?: { url: string; token?: string; timeoutMs: number; putRunning: boolean; retry?: Partial<RetryPolicy> };
  resultsDir: string;
  natsSubject: string;
  /** In-process retries of the nats sink's publish. */
  natsRetry?: Partial<RetryPolicy>;
}

export interface SinksDeps {
  fetch?: typeof fetch;
  /** Publishes one message (JetStream or core NATS, chosen by the caller). */
  publish?: PublishFn;
  logger?: Logger;
  /** Wait between retries (tests record the delays and return at once). */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

/**
 * Builds the configured sinks behind one ResultStore.
 * @throws Error for a configuration that cannot work (http without api.url,
 *   nats without a publish function, an unknown or empty sink list).
 */
export function createSinks(cfg: SinksConfig, deps: SinksDeps = {}): ResultStore {
  const names = [...new Set(cfg.sinks)];
  if (names.length === 0) throw new Error("createSinks: no result sink configured");
  const sinks: ResultSink[] = names.map((name): ResultSink => {
    switch (name) {
      case "http":
        if (!cfg.api?.url) throw new Error("createSinks: the http sink needs api.url (CORESIGHT_API_URL)");
        return createHttpSink(cfg.api, deps);
      case "file":
        return createFileSink(cfg.resultsDir, deps);
      case "nats":
        if (!deps.publish) throw new Error("createSinks: the nats sink needs a publish function");
        if (!cfg.natsSubject) throw new Error("createSinks: the nats sink needs a subject prefix (RESULT_SUBJECT)");
        return createNatsSink(cfg.natsSubject, deps.publish, { ...deps, retry: cfg.natsRetry });
      default:
        throw new Error(`createSinks: unknown sink ${JSON.stringify(name)} (expected http, file or nats)`);
    }
  });
  const logger = deps.logger;

  return {
    sinks: names,

    async store(analysisId, doc, opts) {
      assertSafeAnalysisId(analysisId);
      const settled = await Promise.allSettled(sinks.map((s) => s.store(analysisId, doc, opts)));
      const failures: Array<{ sink: string; error: Error }> = [];
      settled.forEach((r, i) => {
        if (r.status === "rejected") failures.push({ sink: sinks[i]!.name, error: errorOf(r.reason) });
      });
      if (failures.length === 0) return;
      const stored = sinks.filter((_, i) => settled[i]!.status === "fulfilled").map((s) => s.name);
      logger?.debug({ analysis_id: analysisId, stored_in: stored, failed_in: failures.map((f) => f.sink) }, "result not stored in every sink");
      const permanent = failures.find((f) => f.error instanceof CoreSightError && f.error.permanent);
      if (failures.length === 1) {
        const only = failures[0]!.error;
        if (only instanceof CoreSightError) throw only;
        throw new TransientError("result_store_failed", `${failures[0]!.sink} sink: ${only.message}`, { cause: only });
      }
      const message = failures.map((f) => `${f.sink} sink: ${f.error.message}`).join("; ");
      const cause = new AggregateError(
        failures.map((f) => f.error),
        message,
      );
      if (permanent) throw new PermanentError((permanent.error as CoreSightError).code, message, { cause });
      const retryAfter = failures.map((f) => (f.error instanceof TransientError ? f.error.retryAfterMs : undefined)).filter((n): n is number => n !== undefined);
      throw new TransientError("result_store_failed", message, {
        cause,
        retryAfterMs: retryAfter.length > 0 ? Math.max(...retryAfter) : undefined,
      });
    },

    async markRunning(analysisId, ctx, opts = {}) {
      if (!isSafeAnalysisId(analysisId)) return;
      await Promise.all(
        sinks.map(async (s) => {
          if (!s.markRunning) return;
          try {
            await s.markRunning(analysisId, ctx, opts);
          } catch (e: unknown) {
            logger?.warn({ analysis_id: analysisId, sink: s.name, err: errorOf(e).message }, "could not mark the analysis running");
          }
        }),
      );
    },
  };
}
