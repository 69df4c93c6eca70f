/**
 * The consumer loop: pull one message per free slot, run its job behind a
 * p-queue gate, settle it exactly once.
 *
 * Settlement: `settle()` is the only place that acks, naks or terms, and
 * carries out the one decision of worker/settle.ts `decide()` (the table in
 * docs/operations.md). Acks happen only after the result is stored;
 * settlement never throws.
 *
 * Backpressure: a message is pulled only when a slot is free, so idle workers
 * of the pool get the rest. While a job runs, a heartbeat calls working() to
 * extend the ack deadline (downloads and gdb can outlast ack_wait).
 */
import PQueue from "p-queue";
import type { Consumer, JsMsg } from "@nats-io/jetstream";
import type { Config } from "../lib/config.js";
import { errorCodeOf, toError, TransientError } from "../lib/errors.js";
import { ANALYSIS_ID_HEADER } from "../lib/events.js";
import type { Logger } from "../lib/log.js";
import { jitter } from "../lib/retry.js";
import type { Metrics } from "./metrics.js";
import type { JobInput, Pipeline } from "./pipeline.js";
import { abandoned, decide, type JobEnd } from "./settle.js";

/** The analysis-id header, or why the headers cannot be read (the pipeline stores that as invalid_event). */
function readHeaders(msg: JsMsg): Pick<JobInput, "headerAnalysisId" | "headerError"> {
  try {
    return { headerAnalysisId: msg.headers?.get(ANALYSIS_ID_HEADER) || null };
  } catch (e: unknown) {
    return { headerAnalysisId: null, headerError: toError(e).message };
  }
}

/** The cause a `retries_exhausted` result gives when the last allowed delivery was never settled. */
function abandonedError(attempt: number, maxDeliver: number): Error {
  return new TransientError(
    "retries_exhausted",
    `delivery ${attempt} of a message allowed ${maxDeliver}: the worker holding delivery ${maxDeliver} stopped without settling it (crash, OOM kill or SIGKILL); not run again`,
  );
}

export interface ConsumerOptions {
  consumer: Consumer;
  config: Config;
  logger: Logger;
  pipeline: Pipeline;
  metrics?: Metrics;
  /** How long one pull waits for a message (ms). */
  pullExpiresMs?: number;
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
    const { config, metrics } = this.opts;
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
    let end: JobEnd;
    try {
      // Everything read from the message is inside the settle path: a message
      // is the sender's bytes, and the client throws on some of them (a lone
      // CR or LF in a header value); such a message still ends settled.
      attempt = msg.info.deliveryCount;
      metrics?.received.inc();
      if (attempt > 1) metrics?.redeliveries.inc();
      input = { data: msg.data, attempt, signal: ac.signal, heartbeat, ...readHeaders(msg) };
      if (abandoned(attempt, config.nats)) {
        end = { kind: "abandoned" };
      } else {
        const outcome = await this.opts.pipeline.process(input);
        end = { kind: "stored", invalidEvent: outcome.invalidEvent };
      }
    } catch (e: unknown) {
      end = { kind: "threw", error: toError(e), aborted: ac.signal.aborted };
    } finally {
      clearInterval(timer);
    }
    try {
      await this.settle(msg, input, end);
    } finally {
      this.inFlight.delete(msg);
      metrics?.inFlight.set(this.inFlight.size);
    }
  }

  /** Carries out `decide()` for one message. Never throws. */
  private async settle(msg: JsMsg, input: JobInput, end: JobEnd): Promise<void> {
    const { config, logger, metrics } = this.opts;
    const attempt = input.attempt;
    let d = decide(end, attempt, config.nats);
    const cause = end.kind === "threw" ? end.error : null;
    try {
      if (d.storeFailure) {
        try {
          // An abandoned delivery did not run the job: it logs its Received line here.
          await this.opts.pipeline.storeFailure(input, cause ?? abandonedError(attempt, config.nats.maxDeliver), d.row === "abandoned");
        } catch (e: unknown) {
          const err = toError(e);
          d = decide({ kind: "failure_not_stored", error: err }, attempt, config.nats);
          logger.error(
            { seq: msg.seq, attempt, retry_in_ms: d.delayMs, err: err.message, cause: cause?.message },
            "last delivery failed and the failure could not be stored; the message stays in the stream and is redelivered",
          );
        }
      }
      const delay = d.jitter ? jitter(d.delayMs) : d.delayMs;
      if (d.action === "ack") await this.ack(msg);
      else if (d.action === "term") {
        // Server 2.9 ignores a reason on term: plain term().
        msg.term();
        metrics?.settled.inc({ action: "term" });
      } else {
        msg.nak(delay);
        metrics?.settled.inc({ action: "nak" });
      }
      if (d.row === "shutdown") logger.info({ seq: msg.seq, attempt }, "job interrupted by shutdown; message returned to the queue");
      if (d.row === "store_rejected" && cause) {
        logger.error({ seq: msg.seq, attempt, retry_in_ms: delay, error_code: errorCodeOf(cause), err: cause.message }, "result store rejected the result; message kept for retry");
      }
      if (d.row === "transient" && cause) {
        logger.warn(
          { seq: msg.seq, attempt, max_deliver: config.nats.maxDeliver, retry_in_ms: delay, error_code: errorCodeOf(cause), err: cause.message },
          "job failed transiently; message will be redelivered",
        );
      }
    } catch (e: unknown) {
      // A nak/term on a closed connection: the server redelivers after ack_wait.
      logger.warn({ seq: msg.seq, attempt, action: d.action, err: toError(e).message }, "could not settle the message; it will be redelivered after ack_wait");
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
