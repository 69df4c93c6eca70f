/**
 * The nats sink: each result as a CloudEvent published to
 * `{RESULT_SUBJECT}.completed` or `{RESULT_SUBJECT}.failed`.
 *
 *   type    coresight.analysis.completed | coresight.analysis.failed
 *   source  coresight-worker
 *   id      {analysis_id}-{status}   (the same for a re-publish of the same result)
 *   subject {analysis_id}
 *   data    the result document
 *
 * Header `Nats-Msg-Id` = `{analysis_id}-{status}`: the result stream
 * (NATS_RESULT_STREAM, worker/queue.ts `ensureResultStream`) drops the
 * duplicate a redelivered job publishes. The worker passes a JetStream
 * publish that resolves on the stream's PubAck: a result counts as stored
 * only once a stream persisted it (a core publish would count a message
 * nobody kept).
 */
import type { Logger } from "pino";
import { TransientError } from "../errors.js";
import { DEFAULT_RETRY_POLICY, errorOf, retryLoop, type RetryPolicy } from "../retry.js";
import type { ResultSink, ResultStatus } from "./sink.js";

export type PublishFn = (subject: string, data: Uint8Array, headers: Record<string, string>) => Promise<void>;

export const RESULT_EVENT_SOURCE = "coresight-worker";

/** The CloudEvent (structured mode) announcing one stored result. */
export function resultEvent(analysisId: string, status: ResultStatus, doc: object, now: Date = new Date()): Record<string, unknown> {
  return {
    specversion: "1.0",
    type: `coresight.analysis.${status}`,
    source: RESULT_EVENT_SOURCE,
    id: `${analysisId}-${status}`,
    time: now.toISOString(),
    subject: analysisId,
    datacontenttype: "application/json",
    data: doc,
  };
}

/** A NATS subject as a ResultSink; publish failures are retried briefly, then transient. */
export function createNatsSink(
  subjectPrefix: string,
  publish: PublishFn,
  deps: { logger?: Logger; sleep?: (ms: number) => Promise<void>; random?: () => number; retry?: Partial<RetryPolicy> } = {},
): ResultSink {
  const log = deps.logger?.child({ sink: "nats" });
  // A publish fails only while the connection is down; the client reconnects in seconds.
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, maxAttempts: 3, maxWaitMs: 5_000, baseMs: 500, maxMs: 2_000, ...deps.retry };
  const encoder = new TextEncoder();
  return {
    name: "nats",
    async store(analysisId, doc, opts) {
      const subject = `${subjectPrefix}.${opts.status}`;
      const data = encoder.encode(JSON.stringify(resultEvent(analysisId, opts.status, doc)));
      const headers = { "Nats-Msg-Id": `${analysisId}-${opts.status}`, "Content-Type": "application/cloudevents+json" };
      const outcome = await retryLoop(
        async () => {
          try {
            await publish(subject, data, headers);
            return { done: true };
          } catch (e: unknown) {
            return { done: false, error: errorOf(e) };
          }
        },
        {
          policy,
          sleep: deps.sleep,
          random: deps.random,
          signal: opts.signal,
          onRetry: ({ attempt, delayMs, error }) =>
            log?.warn({ analysis_id: analysisId, subject, attempt, retry_in_ms: delayMs, err: error.message }, "result publish failed; retrying"),
        },
      );
      if (outcome.ok) {
        log?.debug({ analysis_id: analysisId, subject }, "result published");
        return;
      }
      throw new TransientError(
        "result_store_failed",
        `could not publish the result for ${analysisId} to ${subject} (after ${outcome.attempts} attempts): ${outcome.error.message}`,
        {
          cause: outcome.error,
        },
      );
    },
  };
}
