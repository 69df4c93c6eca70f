/**
 * The http sink: `PUT {api}/api/v1/analyses/{analysis_id}` with the result
 * document, `Authorization: Bearer {token}` (contract: docs/api.md).
 *
 * Status semantics:
 * - 2xx, and 409 (the API already holds a result for this analysis): stored.
 * - 408, 425, 429, 5xx, network errors and timeouts: retried in-process with
 *   backoff and jitter (Retry-After honoured) within a bounded budget, then
 *   TransientError("result_store_failed"): the consumer naks and the message
 *   stays in the queue until the API is back.
 * - 3xx and any other 4xx: PermanentError("result_rejected") quoting the
 *   response body; logged at error level, since retrying cannot help.
 *
 * The token is sent only in the header; it never appears in a log line or an
 * error message.
 */
import type { Logger } from "pino";
import { PermanentError, TransientError } from "../errors.js";
import { scrubSecrets } from "../log.js";
import { DEFAULT_RETRY_POLICY, errorOf, parseRetryAfter, retryLoop, type RetryPolicy, type TryOutcome } from "../retry.js";
import type { ResultSink, StoreOptions } from "./sink.js";

export interface HttpSinkOptions {
  /** CoreSight API base URL, e.g. http://coresight-api:8000 */
  url: string;
  token?: string;
  /** Per-request timeout. */
  timeoutMs: number;
  /** Also PUT `{status: "running"}` when a job starts. */
  putRunning: boolean;
  retry?: Partial<RetryPolicy>;
}

export interface HttpSinkDeps {
  fetch?: typeof fetch;
  logger?: Logger;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

/** How much of a rejecting response body goes into the error message and the log. */
const BODY_LIMIT = 1000;

function truncate(s: string, n = BODY_LIMIT): string {
  const t = s.trim();
  return t.length > n ? `${t.slice(0, n)}… (${t.length} characters)` : t;
}

function retryable(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/** What went wrong with a request that never got a response, in one line. */
function networkText(e: unknown): string {
  // Duck-typed: fetch's errors can come from another realm (jest's vm), where instanceof Error fails.
  const err = (e !== null && typeof e === "object" ? e : { message: String(e) }) as { name?: unknown; message?: unknown; cause?: unknown };
  if (err.name === "TimeoutError") return "request timed out";
  const message = typeof err.message === "string" ? err.message : errorOf(e).message;
  const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
  const detail = cause && typeof cause === "object" ? (typeof cause.code === "string" ? cause.code : String(cause.message ?? "")) : "";
  return detail ? `${message} (${detail})` : message;
}

async function readBody(res: Response): Promise<string> {
  try {
    return await res.text();
  } catch (e: unknown) {
    return `(body unreadable: ${errorOf(e).message})`;
  }
}

/** The CoreSight API as a ResultSink. */
export function createHttpSink(opts: HttpSinkOptions, deps: HttpSinkDeps = {}): ResultSink {
  const fetchFn = deps.fetch ?? globalThis.fetch;
  const base = opts.url.replace(/\/+$/, "");
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...opts.retry };
  const log = deps.logger?.child({ sink: "http" });
  const endpoint = (id: string) => `${base}/api/v1/analyses/${encodeURIComponent(id)}`;

  function headers(analysisId: string): Record<string, string> {
    const h: Record<string, string> = {
      "content-type": "application/json",
      accept: "application/json",
      "user-agent": "coresight-worker",
      // The path already makes the PUT idempotent; the key lets a proxy or API dedupe too.
      "idempotency-key": analysisId,
    };
    if (opts.token) h.authorization = `Bearer ${opts.token}`;
    return h;
  }

  function requestSignal(caller?: AbortSignal): AbortSignal {
    const timeout = AbortSignal.timeout(opts.timeoutMs);
    return caller ? AbortSignal.any([caller, timeout]) : timeout;
  }

  /** One PUT. Resolves with the outcome for retryLoop; throws PermanentError on a rejection. */
  async function putOnce(analysisId: string, body: string, signal: AbortSignal | undefined, attempt: number): Promise<TryOutcome> {
    let res: Response;
    try {
      res = await fetchFn(endpoint(analysisId), {
        method: "PUT",
        headers: headers(analysisId),
        body,
        signal: requestSignal(signal),
        // A redirect would re-send the bearer token somewhere else; refuse it instead.
        redirect: "manual",
      });
    } catch (e: unknown) {
      return { done: false, error: new Error(networkText(e), { cause: e }) };
    }
    if ((res.status >= 200 && res.status < 300) || res.status === 409) {
      await res.body?.cancel().catch(() => undefined);
      log?.debug({ analysis_id: analysisId, status: res.status, attempt }, res.status === 409 ? "API already holds a result (409): stored" : "result stored");
      return { done: true };
    }
    const text = truncate(scrubSecrets(await readBody(res)));
    if (retryable(res.status)) {
      return {
        done: false,
        error: new Error(`HTTP ${res.status}${text ? `: ${text}` : ""}`),
        retryAfterMs: parseRetryAfter(res.headers.get("retry-after")),
      };
    }
    const why =
      res.status >= 300 && res.status < 400
        ? `HTTP ${res.status} redirect to ${JSON.stringify(scrubSecrets(res.headers.get("location") ?? ""))}; set CORESIGHT_API_URL to the final address`
        : `HTTP ${res.status}${text ? `: ${text}` : " (empty body)"}`;
    log?.error({ analysis_id: analysisId, status: res.status, response_body: text, attempt }, "CoreSight API rejected the result");
    throw new PermanentError("result_rejected", `CoreSight API rejected the result for ${analysisId}: ${why}`);
  }

  const sink: ResultSink = {
    name: "http",

    async store(analysisId: string, doc: object, storeOpts: StoreOptions): Promise<void> {
      const body = JSON.stringify(doc);
      const signal = storeOpts.signal;
      const outcome = await retryLoop((attempt) => putOnce(analysisId, body, signal, attempt), {
        policy,
        sleep: deps.sleep,
        random: deps.random,
        signal,
        onRetry: ({ attempt, delayMs, error }) =>
          log?.warn({ analysis_id: analysisId, attempt, max_attempts: policy.maxAttempts, retry_in_ms: delayMs, err: error.message }, "result PUT failed; retrying"),
      });
      if (outcome.ok) return;
      const why = outcome.aborted ? "aborted" : `after ${outcome.attempts} attempt${outcome.attempts === 1 ? "" : "s"}`;
      const message = `CoreSight API did not store the result for ${analysisId} (${why}): ${outcome.error.message}`;
      log?.warn(
        { analysis_id: analysisId, attempts: outcome.attempts, retry_after_ms: outcome.retryAfterMs, err: outcome.error.message },
        "result PUT gave up; the message goes back to the queue",
      );
      throw new TransientError("result_store_failed", message, { cause: outcome.error, retryAfterMs: outcome.retryAfterMs });
    },
  };

  if (opts.putRunning) {
    sink.markRunning = async (analysisId, ctx, markOpts) => {
      const body = JSON.stringify({ analysis_id: analysisId, status: "running", started_at: new Date().toISOString(), event: ctx });
      try {
        const res = await fetchFn(endpoint(analysisId), {
          method: "PUT",
          headers: headers(analysisId),
          body,
          signal: requestSignal(markOpts.signal),
          redirect: "manual",
        });
        const text = await readBody(res);
        // 409: a result is already there (a redelivery after the result was stored); fine.
        if (!res.ok && res.status !== 409) {
          log?.warn({ analysis_id: analysisId, status: res.status, response_body: truncate(scrubSecrets(text)) }, "running status not accepted");
        }
      } catch (e: unknown) {
        log?.warn({ analysis_id: analysisId, err: networkText(e) }, "running status not sent");
      }
    };
  }
  return sink;
}
