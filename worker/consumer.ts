/**
 * The consumer loop: pull one message per free slot, run its job behind a
 * p-queue gate, settle it exactly once.
 *
 * Settlement (the only place that acks, naks or terms):
 * - job stored a result                      → ack (await ackAck)
 * - job stored a failed result for an invalid event → term
 * - job threw, not the last delivery         → nak(backoff[attempt])
 * - job threw on the last allowed delivery   → store `retries_exhausted`, then ack
 * - job interrupted by shutdown              → nak(0): another worker takes it
 * Acks happen only after the result is stored; settlement never throws.
 *
 * Backpressure: a message is pulled only when a slot is free, so idle workers
 * of the pool get the rest. While a job runs, a heartbeat calls working() to
 * extend the ack deadline (downloads and gdb can outlast ack_wait).
 */
import PQueue from "p-queue";
import type { Consumer, JsMsg } from "@nats-io/jetstream";
import type { Config } from "../lib/config.js";
import { errorCodeOf, isPermanent, toError, TransientError } from "../lib/errors.js";
import { ANALYSIS_ID_HEADER } from "../lib/events.js";
import type { Logger } from "../lib/log.js";
import { jitter } from "../lib/results/retry.js";
import type { Metrics } from "./metrics.js";
import { ShutdownError, type JobInput, type Pipeline } from "./pipeline.js";

export interface ConsumerOptions {
  consumer: Consumer;
  config: Config;
  logger: Logger;
  pipeline: Pipeline;
  metrics?: Metrics;
  /** How long one pull waits for a message (ms). */
  pullExpiresMs?: number;
}

/**
 * The headers the pipeline reads, or why they cannot be read: the client
 * throws for a value holding a lone CR or LF (the sender's bytes), and such a
 * message is an invalid event, not a crash of the worker.
 */
function readHeaders(msg: JsMsg): Pick<JobInput, "headerAnalysisId" | "headerError"> {
  try {
    return { headerAnalysisId: msg.headers?.get(ANALYSIS_ID_HEADER) || null };
  } catch (e: unknown) {
    return { headerAnalysisId: null, headerError: toError(e).message };
  }
}

export class QueueConsumer {
  private readonly queue: PQueue;
  private readonly inFlight = new Map<JsMsg, AbortController>();
  /** Resolves the loop's wait for a free slot (a job finished, or stop). */
  private wake: (() => void) | null = null;
  private stopping = false;
  private loopDone: Promise<void> | null = null;
  private stopPromise: Promise<void> | null = null;

  constructor(private readonly opts: ConsumerOptions) {
    this.queue = new PQueue({ concurrency: opts.config.concurrency });
    this.queue.on("next", () => this.wake?.());
  }

  get activeJobs(): number {
    return this.inFlight.size;
  }

  /** Starts pulling; resolves when the loop ends (after stop()). */
  start(): Promise<void> {
    this.loopDone ??= this.loop();
    return this.loopDone;
  }

  private async loop(): Promise<void> {
    const { consumer, config, logger } = this.opts;
    const expires = this.opts.pullExpiresMs ?? 3000;
    while (!this.stopping) {
      while (this.queue.size + this.queue.pending >= config.concurrency && !this.stopping) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = null;
      }
      if (this.stopping) break;
      let msg: JsMsg | null;
      try {
        msg = await consumer.next({ expires });
      } catch (e: unknown) {
        if (this.stopping) break;
        logger.warn({ err: toError(e).message }, "pull failed; retrying in 1 s");
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      if (!msg) continue;
      if (this.stopping) {
        // Pulled while stopping: hand it straight back.
        msg.nak();
        this.opts.metrics?.settled.inc({ action: "nak" });
        break;
      }
      const m = msg;
      const ac = new AbortController();
      this.inFlight.set(m, ac);
      this.opts.metrics?.inFlight.set(this.inFlight.size);
      // handle() settles every path itself; a throw reaching here is a bug, logged, never an unhandled rejection.
      this.queue.add(() => this.handle(m, ac)).catch((e: unknown) => logger.error({ err: toError(e).message }, "job handler threw past settlement"));
    }
  }

  private async handle(msg: JsMsg, ac: AbortController): Promise<void> {
    const { config, logger, pipeline, metrics } = this.opts;
    let attempt = 1;
    let lastBeat = 0;
    const heartbeat = () => {
      const now = Date.now();
      if (now - lastBeat < 1000) return;
      lastBeat = now;
      msg.working();
    };
    const timer = setInterval(() => msg.working(), Math.max(1000, Math.floor(config.nats.ackWaitMs / 3)));
    let input: JobInput = { data: new Uint8Array(), attempt, signal: ac.signal, heartbeat };
    try {
      try {
        // Everything read from the message is inside the settle path: a message
        // is the sender's bytes, and the client throws on some of them (a lone
        // CR or LF in a header value); such a message still ends settled.
        attempt = msg.info.deliveryCount;
        metrics?.received.inc();
        if (attempt > 1) metrics?.redeliveries.inc();
        input = { data: msg.data, attempt, signal: ac.signal, heartbeat, ...readHeaders(msg) };
        const outcome = await pipeline.process(input);
        if (outcome.invalidEvent) {
          // Server 2.9 ignores a reason on term: plain term().
          msg.term();
          metrics?.settled.inc({ action: "term" });
        } else {
          await this.ack(msg);
        }
      } catch (e: unknown) {
        const err = toError(e);
        if (err instanceof ShutdownError || ac.signal.aborted) {
          msg.nak();
          metrics?.settled.inc({ action: "nak" });
          logger.info({ seq: msg.seq, attempt }, "job interrupted by shutdown; message returned to the queue");
        } else if (isPermanent(err)) {
          // Only the result store throws permanent errors past the pipeline:
          // the API rejected the document (4xx). Retrying as-is rarely helps,
          // but dropping would lose the event; keep it queued at the longest
          // backoff so an operator can fix the API side (e.g. a token).
          const backoff = config.nats.backoffMs;
          const delay = backoff[backoff.length - 1] ?? 0;
          if (attempt >= config.nats.maxDeliver) {
            await this.exhausted(msg, input, err);
          } else {
            msg.nak(delay);
            metrics?.settled.inc({ action: "nak" });
            logger.error(
              { seq: msg.seq, attempt, retry_in_ms: delay, error_code: errorCodeOf(err), err: err.message },
              "result store rejected the result; message kept for retry",
            );
          }
        } else if (attempt >= config.nats.maxDeliver) {
          await this.exhausted(msg, input, err);
        } else {
          const backoff = config.nats.backoffMs;
          // Jitter spreads the retries of a pool that failed together.
          const planned = jitter(backoff[Math.min(attempt - 1, backoff.length - 1)] ?? 0);
          const delay = err instanceof TransientError && err.retryAfterMs !== undefined ? Math.max(planned, err.retryAfterMs) : planned;
          msg.nak(delay);
          metrics?.settled.inc({ action: "nak" });
          logger.warn(
            { seq: msg.seq, attempt, max_deliver: config.nats.maxDeliver, retry_in_ms: delay, error_code: errorCodeOf(err), err: err.message },
            "job failed transiently; message will be redelivered",
          );
        }
    }
    } catch (e: unknown) {
      // Settlement itself failed (it should not): term rather than let one message loop the pool.
      logger.error({ seq: msg.seq, attempt, err: toError(e).message }, "settling the message failed; terminating it");
      try {
        msg.term();
        metrics?.settled.inc({ action: "term" });
      } catch {
        // the connection is gone: the server redelivers after ack_wait
      }
    } finally {
      clearInterval(timer);
      this.inFlight.delete(msg);
      metrics?.inFlight.set(this.inFlight.size);
    }
  }

  private async ack(msg: JsMsg): Promise<void> {
    try {
      await msg.ackAck({ timeout: 10_000 });
      this.opts.metrics?.settled.inc({ action: "ack" });
    } catch (e: unknown) {
      // The result is stored; a lost ack only means a redelivery, which the
      // idempotent PUT (same analysis_id) absorbs.
      this.opts.logger.warn({ seq: msg.seq, err: toError(e).message }, "ack not confirmed; the message may be redelivered");
    }
  }

  private async exhausted(msg: JsMsg, input: Parameters<Pipeline["storeFailure"]>[0], err: Error): Promise<void> {
    try {
      await this.opts.pipeline.storeFailure(input, err);
      await this.ack(msg);
    } catch (e: unknown) {
      // Even the failure could not be stored. The server will not redeliver
      // past max_deliver; say so loudly so an operator can replay it.
      msg.nak();
      this.opts.metrics?.settled.inc({ action: "nak" });
      this.opts.logger.error(
        { seq: msg.seq, attempt: input.attempt, err: toError(e).message, cause: err.message },
        "last delivery failed and the failure could not be stored; the message stays in the stream for replay",
      );
    }
  }

  /**
   * Stops pulling, lets in-flight jobs finish within `graceMs`, then aborts
   * the rest (their messages are nak'ed for redelivery). Idempotent.
   */
  stop(graceMs: number): Promise<void> {
    this.stopPromise ??= (async () => {
      this.stopping = true;
      this.wake?.();
      const idle = this.queue.onIdle();
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<"timeout">((r) => {
        timer = setTimeout(() => r("timeout"), graceMs);
      });
      const first = await Promise.race([idle.then(() => "idle" as const), graceOver]);
      clearTimeout(timer);
      if (first === "timeout") {
        this.opts.logger.warn({ jobs: this.inFlight.size }, "shutdown grace period over; aborting in-flight jobs");
        for (const ac of this.inFlight.values()) ac.abort();
        await idle;
      }
      await this.loopDone;
    })();
    return this.stopPromise;
  }

  /** Aborts every job at once (second signal). */
  abortAll(): void {
    for (const ac of this.inFlight.values()) ac.abort();
  }
}
