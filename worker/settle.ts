/**
 * What happens to a message: one pure decision, `decide()`, from how its job
 * ended, its delivery count and the retry policy, to ack / nak / term.
 * The consumer carries the decision out (worker/consumer.ts `settle`); the
 * table in docs/operations.md is `settleTable()`, checked by a test.
 *
 * Invariants:
 * - ack or term only after a result is stored (the job stored it, or
 *   `storeFailure` says to store `retries_exhausted` first);
 * - nothing is ever left without a redelivery: the stream's consumer has no
 *   `max_deliver` of its own (worker/queue.ts), so a delivery whose worker
 *   died is always delivered again, and a delivery past `NATS_MAX_DELIVER`
 *   stores `retries_exhausted` without running the job again.
 */
import { isPermanent } from "../lib/errors.js";
import { ShutdownError, TransientError } from "../lib/errors.js";

/** How a job ended, as the consumer saw it. */
export type JobEnd =
  /** The pipeline stored a result (completed, or failed with a code). */
  | { kind: "stored"; invalidEvent: boolean }
  /** The pipeline threw: nothing stored yet. */
  | { kind: "threw"; error: Error; aborted?: boolean }
  /** Delivered past NATS_MAX_DELIVER: the worker holding the last allowed delivery died without settling it. */
  | { kind: "abandoned" }
  /** `storeFailure` was decided, and storing it failed too. */
  | { kind: "failure_not_stored"; error: Error };

export interface SettlePolicy {
  /** NATS_MAX_DELIVER: the delivery on which the worker gives up. */
  maxDeliver: number;
  /** NATS_BACKOFF_MS: the nak delay after delivery n is backoffMs[n-1] (the last one repeats). */
  backoffMs: readonly number[];
}

export type SettleRowId = "stored" | "invalid_event" | "shutdown" | "transient" | "store_rejected" | "last_delivery" | "abandoned" | "failure_not_stored";

export interface Decision {
  action: "ack" | "nak" | "term";
  delayMs: number;
  /** Spread the delay (a pool that failed together retries apart). */
  jitter: boolean;
  /** Store a `retries_exhausted` result before the action. */
  storeFailure: boolean;
  row: SettleRowId;
}

/** Whether the job should run at all: past NATS_MAX_DELIVER it is not run again. */
export function abandoned(deliveryCount: number, policy: SettlePolicy): boolean {
  return deliveryCount > policy.maxDeliver;
}

/** The one settle decision. Pure: the same inputs always give the same decision. */
export function decide(end: JobEnd, deliveryCount: number, policy: SettlePolicy): Decision {
  const longest = policy.backoffMs[policy.backoffMs.length - 1] ?? 0;
  switch (end.kind) {
    case "stored":
      return end.invalidEvent ? decision("term", "invalid_event") : decision("ack", "stored");
    case "abandoned":
      return { ...decision("ack", "abandoned"), storeFailure: true };
    case "failure_not_stored":
      return { ...decision("nak", "failure_not_stored"), delayMs: longest };
    case "threw": {
      if (end.error instanceof ShutdownError || end.aborted) return decision("nak", "shutdown");
      if (deliveryCount >= policy.maxDeliver) return { ...decision("ack", "last_delivery"), storeFailure: true };
      // Only the result store throws permanent errors past the pipeline: the
      // API rejected the document. Retrying soon rarely helps, dropping would
      // lose the event: keep it at the longest backoff for an operator.
      if (isPermanent(end.error)) return { ...decision("nak", "store_rejected"), delayMs: longest };
      const planned = policy.backoffMs[Math.min(deliveryCount - 1, policy.backoffMs.length - 1)] ?? 0;
      const retryAfter = end.error instanceof TransientError ? (end.error.retryAfterMs ?? 0) : 0;
      return { ...decision("nak", "transient"), delayMs: Math.max(planned, retryAfter), jitter: retryAfter <= planned };
    }
  }
}

function decision(action: Decision["action"], row: SettleRowId): Decision {
  return { action, delayMs: 0, jitter: false, storeFailure: false, row };
}

/** The rows of the settle table in docs/operations.md, one per decision `decide()` can make. */
export const SETTLE_ROWS: ReadonlyArray<{ row: SettleRowId; when: string; settle: string; stored: string }> = [
  {
    row: "stored",
    when: "analyzed, or the dump is permanently bad (`dump_not_found`, `not_a_core`, `too_large`, `gdb_timeout`, …)",
    settle: "ack, after every sink stored the result",
    stored: "`completed`, or `failed` + code",
  },
  { row: "invalid_event", when: "not JSON / not a valid event", settle: "**term** (never redelivered), after storing", stored: "`failed`, `invalid_event`, id `invalid-<sha256>`" },
  {
    row: "transient",
    when: "transient failure (S3/HTTP 5xx, 429, network, API down) before delivery `NATS_MAX_DELIVER`",
    settle: "nak after `NATS_BACKOFF_MS[delivery-1]` (jittered; at least Retry-After)",
    stored: "nothing yet",
  },
  {
    row: "store_rejected",
    when: "the API rejects the result (4xx other than 409) before delivery `NATS_MAX_DELIVER`",
    settle: "nak after the longest backoff, logged as error",
    stored: "nothing yet",
  },
  { row: "last_delivery", when: "still failing on delivery `NATS_MAX_DELIVER`", settle: "ack, after storing", stored: "`failed`, `retries_exhausted` with the last error" },
  {
    row: "abandoned",
    when: "delivered past `NATS_MAX_DELIVER` (the worker holding the last delivery died)",
    settle: "ack, after storing; the job is not run again",
    stored: "`failed`, `retries_exhausted`",
  },
  {
    row: "failure_not_stored",
    when: "the `retries_exhausted` result cannot be stored either",
    settle: "nak after the longest backoff: redelivered until it can be stored",
    stored: "nothing yet",
  },
  { row: "shutdown", when: "shutdown interrupts the job", settle: "nak (immediate redelivery elsewhere)", stored: "nothing" },
];

/** The settle table as Markdown (docs/operations.md holds exactly this). */
export function settleTable(): string {
  const lines = ["| outcome of the job | settle | result stored |", "| --- | --- | --- |"];
  for (const r of SETTLE_ROWS) lines.push(`| ${r.when} | ${r.settle} | ${r.stored} |`);
  return lines.join("\n");
}
