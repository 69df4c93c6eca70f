/**
 * Backoff with jitter, Retry-After parsing and an abortable sleep: shared by
 * the result sinks (in-process retries), the consumer (nak delays) and the
 * dump download (a throttled GET's Retry-After rides on its TransientError).
 *
 * Jitter matters here because a CoreSight outage fails every worker's PUT at
 * the same moment; without it the whole pool retries in lockstep and hits the
 * recovering API as one burst.
 */
import { types } from "node:util";
import { toError } from "./errors.js";

/**
 * toError that also keeps errors from another realm (Node built-ins seen
 * from jest's vm context fail `instanceof Error`, and toError would turn
 * them into "{}").
 */
export function errorOf(e: unknown): Error {
  return types.isNativeError(e) ? e : toError(e);
}

export interface BackoffOptions {
  /** Delay before the first retry, before jitter. */
  baseMs: number;
  /** Upper bound of any single delay, before jitter. */
  maxMs: number;
  /** Growth per retry (default 2). */
  factor?: number;
  /** Random source in [0, 1) (tests pass a fixed one). */
  random?: () => number;
}

/**
 * Delay before retry number `retry` (1-based): `min(max, base * factor^(retry-1))`
 * with "equal jitter", i.e. uniformly in [d/2, d]. Half the delay is kept
 * fixed so a retry never comes back almost at once.
 */
export function backoffDelay(retry: number, opts: BackoffOptions): number {
  const factor = opts.factor ?? 2;
  const n = Math.max(1, Math.floor(retry));
  const d = Math.min(opts.maxMs, opts.baseMs * factor ** (n - 1));
  return jitter(d, opts.random);
}

/** `ms` spread uniformly over [ms/2, ms]; for nak delays that should not line up across a pool. */
export function jitter(ms: number, random: () => number = Math.random): number {
  if (!(ms > 0)) return 0;
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(ms / 2 + (ms / 2) * r);
}

/**
 * Milliseconds a `Retry-After` header asks for: delta-seconds or an HTTP date.
 * undefined for a missing or unreadable value; a date in the past gives 0.
 */
export function parseRetryAfter(value: string | null | undefined, now: number = Date.now()): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (v === "") return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const t = Date.parse(v);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, t - now);
}

/** Thrown by `sleep` when its signal aborts. */
export class AbortedError extends Error {
  override name = "AbortedError";
}

/** setTimeout as a promise that rejects with AbortedError when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError("aborted", { cause: signal.reason }));
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError("aborted", { cause: signal?.reason }));
    };
    const timer = setTimeout(
      () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      },
      Math.max(0, ms),
    );
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * An injected sleep (tests record delays and return at once) made abortable:
 * resolves with the sleep, rejects with AbortedError as soon as `signal` aborts.
 */
export function abortableSleep(sleepFn: (ms: number) => Promise<void>, ms: number, signal?: AbortSignal): Promise<void> {
  if (!signal) return sleepFn(ms);
  if (signal.aborted) return Promise.reject(new AbortedError("aborted", { cause: signal.reason }));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new AbortedError("aborted", { cause: signal.reason }));
    signal.addEventListener("abort", onAbort, { once: true });
    sleepFn(ms).then(
      () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/** How long a sink keeps retrying in-process before it hands the job back to the queue. */
export interface RetryPolicy {
  /** Requests in total, the first one included. */
  maxAttempts: number;
  /**
   * Budget for the waits between requests (request time not counted: each
   * request is bounded by its own timeout). A Retry-After beyond what is left
   * ends the retries at once; the error then carries it as `retryAfterMs`.
   */
  maxWaitMs: number;
  baseMs: number;
  maxMs: number;
}

/** ~5 requests over at most ~30 s of waiting. */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 5,
  maxWaitMs: 30_000,
  baseMs: 1_000,
  maxMs: 10_000,
});

/** One try's outcome for `retryLoop`: stored, or a failure worth another try. */
export type TryOutcome = { done: true } | { done: false; error: Error; retryAfterMs?: number };

export interface RetryLoopOptions {
  policy: RetryPolicy;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  signal?: AbortSignal;
  /** Called before each wait (for a log line). */
  onRetry?: (info: { attempt: number; delayMs: number; error: Error }) => void;
}

export type RetryLoopResult =
  | { ok: true; attempts: number }
  | {
      ok: false;
      attempts: number;
      error: Error;
      /** The remote's Retry-After when it asked for more than the budget left. */
      retryAfterMs?: number;
      /** Stopped because the caller's signal aborted. */
      aborted: boolean;
    };

/**
 * Calls `tryOnce` until it reports done, the attempts or the wait budget run
 * out, or `signal` aborts. A Retry-After is honoured as the wait; backoff with
 * jitter otherwise. Errors thrown by `tryOnce` (permanent ones) propagate.
 */
export async function retryLoop(tryOnce: (attempt: number) => Promise<TryOutcome>, opts: RetryLoopOptions): Promise<RetryLoopResult> {
  const { policy } = opts;
  // The real sleep takes the signal itself, so an abort also clears its timer
  // (wrapping it would leave a 10 s timer holding the process open).
  const injected = opts.sleep;
  const wait = injected ? (ms: number) => abortableSleep(injected, ms, opts.signal) : (ms: number) => sleep(ms, opts.signal);
  let waited = 0;
  for (let attempt = 1; ; attempt++) {
    const outcome = await tryOnce(attempt);
    if (outcome.done) return { ok: true, attempts: attempt };
    if (opts.signal?.aborted) return { ok: false, attempts: attempt, error: outcome.error, aborted: true };
    if (attempt >= policy.maxAttempts) {
      return { ok: false, attempts: attempt, error: outcome.error, retryAfterMs: outcome.retryAfterMs, aborted: false };
    }
    const left = policy.maxWaitMs - waited;
    const delay = outcome.retryAfterMs ?? Math.min(backoffDelay(attempt, { baseMs: policy.baseMs, maxMs: policy.maxMs, random: opts.random }), left);
    if (left <= 0 || delay > left) {
      return { ok: false, attempts: attempt, error: outcome.error, retryAfterMs: outcome.retryAfterMs, aborted: false };
    }
    opts.onRetry?.({ attempt, delayMs: delay, error: outcome.error });
    try {
      await wait(delay);
    } catch (e: unknown) {
      if (e instanceof AbortedError) return { ok: false, attempts: attempt, error: outcome.error, aborted: true };
      throw e;
    }
    waited += delay;
  }
}
