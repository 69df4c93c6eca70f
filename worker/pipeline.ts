/**
 * One job, start to finish: event → download → analyze → store result.
 *
 * The stages are named functions around one `Job` (the delivery, its event,
 * its logger, its stage timings): `openJob` (parse the event, the analysis
 * id, the Received line) → `downloadAndAnalyze` (space claim, job dir,
 * `downloadStage`, `analyzeStage`, cleanup) → `storeResult`.
 *
 * Contract with the consumer (worker/consumer.ts):
 * - `process()` resolves only after a result (completed or failed) is stored
 *   in every sink; the consumer then acks (or terms an invalid event).
 * - It throws a TransientError (or any non-permanent error) when the job
 *   should be retried: the consumer naks; on the last allowed delivery it
 *   calls `storeFailure()` with `retries_exhausted` instead.
 * - Permanent problems with the dump (not found, not a core, too large, ...)
 *   become a `failed` result here; they never throw past `process()`.
 * - Temporary files are removed on every path.
 * - A dump that cannot fit is not attempted: before the download, the event's
 *   `file_size` is checked against the work dir's free space (statfs) less
 *   what this process's other jobs have claimed; when it does not fit, the
 *   job throws a TransientError ("not enough free space") and the message is
 *   nak'ed with the backoff delay, for this worker later or another one.
 */
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import type { S3Client } from "@aws-sdk/client-s3";
import type { Config } from "../lib/config.js";
import { InvalidEventError, type PermanentError, ShutdownError, TransientError, errorCodeOf, isPermanent, toError } from "../lib/errors.js";
import { analysisIdOf, eventContext, parseEvent, type CoredumpEvent } from "../lib/events.js";
import type { Logger } from "../lib/log.js";
import { failedResult } from "../lib/failedResult.js";
import type { Result } from "../lib/result.js";
import { resultDocument } from "../lib/results/document.js";
import type { ResultStore } from "../lib/results/sink.js";
import { downloadDump } from "../lib/storage/download.js";
import { parseDumpUrl, redactUrl } from "../lib/storage/url.js";
import { createJobDir, removeJobDir } from "../lib/storage/workDir.js";
import type { AnalyzeTimings } from "../lib/analyze.js";
import type { Compression } from "../lib/core/compression.js";
import type { Metrics } from "./metrics.js";

export interface AnalyzeRequest {
  /** The job's analysis_id (a deduplicated result of a later job references it). */
  analysisId: string;
  core: string;
  workDir: string;
  signal: AbortSignal;
  onProgress: () => void;
  /** The dump as it arrived (the download decompressed it on the fly): what the result reports. */
  arrived: { size: number; compression: Compression | null };
  /** The crashed container's image (the event's data.image), for the `image` symbol source. */
  image: string | null;
  /** Called with the analysis' timings once it is done (the job's log line says whether its gdb was started ahead). */
  onTimings?: (t: AnalyzeTimings) => void;
}

export interface PipelineDeps {
  config: Config;
  logger: Logger;
  store: ResultStore;
  s3: S3Client | null;
  /** Runs gdb on a downloaded core; never throws for a bad core (returns a failed result). */
  analyze: (req: AnalyzeRequest) => Promise<Result>;
  metrics?: Metrics;
  fetch?: typeof fetch;
  workerName?: string;
  /** Free bytes in a directory (default: statfs); tests hand in their own. */
  freeBytes?: (dir: string) => Promise<number>;
}

export interface JobInput {
  data: Uint8Array;
  /** Delivery count of this message, 1-based. */
  attempt: number;
  signal: AbortSignal;
  /** Extends the message's ack deadline (JetStream working()). */
  heartbeat: () => void;
  /** A CoreSight-assigned analysis id from the message's header, if any. */
  headerAnalysisId?: string | null;
  /** The message's headers could not be read (malformed bytes): the event is invalid. */
  headerError?: string | null;
}

/** What one delivery's message says, read once by `openJob()`. */
interface JobContext {
  /** The event; null when the message is not a valid one. */
  ev: CoredumpEvent | null;
  analysisId: string;
  log: Logger;
  /** Why the message cannot be processed (invalid event, or a bad analysis id header). */
  invalid: Error | null;
}

export interface JobOutcome {
  analysisId: string;
  status: "completed" | "failed";
  errorCode: string | null;
  /** The event was invalid: terminate the message rather than ack it. */
  invalidEvent: boolean;
}

/** analysis_id for a message that is not a valid event: a hash of its bytes. */
function invalidAnalysisId(data: Uint8Array): string {
  return "invalid-" + createHash("sha256").update(data).digest("hex").slice(0, 32);
}

/** What can be read from a message before validation, for the Received line. */
function peek(data: Uint8Array): Record<string, unknown> {
  try {
    const o = JSON.parse(Buffer.from(data).toString("utf8")) as Record<string, unknown>;
    const d = (o && typeof o.data === "object" && o.data) || {};
    const s = (v: unknown) => (typeof v === "string" || typeof v === "number" ? v : undefined);
    const rec = d as Record<string, unknown>;
    return {
      event_id: s(o.id),
      file_name: s(rec.file_name),
      pod: s(rec.pod_name),
      namespace: s(rec.pod_namespace),
    };
  } catch {
    return {};
  }
}

/** Bytes an unprivileged process may still write in `dir`'s file system. */
export async function freeBytes(dir: string): Promise<number> {
  await fs.mkdir(dir, { recursive: true });
  const st = await fs.statfs(dir);
  return st.bavail * st.bsize;
}

/**
 * The work dir's space as this process's jobs claim it: each download claims
 * its event's file_size before it starts, so two jobs never both count on
 * the same free bytes.
 */
function createSpaceClaims(config: Config, spaceOf: (dir: string) => Promise<number>) {
  /** file_size of the downloads in progress in this process: space already spoken for. */
  let claimedBytes = 0;

  /**
   * Claims `size` bytes of the work dir for one job, or throws a
   * TransientError when they are not free. A size above MAX_DUMP_BYTES is
   * left to the download, which fails it permanently (too_large): retrying
   * elsewhere would not help. Returns the release, safe to call twice.
   */
  return async function claimSpace(log: Logger, size: number | null): Promise<() => void> {
    if (size === null || size > config.maxDumpBytes) return () => undefined;
    const free = (await spaceOf(config.workDir)) - claimedBytes;
    if (size > free) {
      log.warn(
        { stage: "download", file_size: size, free_bytes: Math.max(0, free), claimed_bytes: claimedBytes, work_dir: config.workDir },
        "not enough free space for the dump; not downloading, the message is returned to the queue",
      );
      throw new TransientError("download_failed", `not enough free space in ${config.workDir}: the dump is ${size} bytes, ${Math.max(0, free)} free`);
    }
    claimedBytes += size;
    let released = false;
    return () => {
      if (!released) claimedBytes -= size;
      released = true;
    };
  };
}

/**
 * Reads what a message says, once: the event (or why it is invalid), the
 * analysis id, and the job's logger. Logs the operator's one line
 * `Received coredump.uploaded` unless `announce` is false (the same
 * delivery already logged it).
 */
function openJob(logger: Logger, input: JobInput, announce = true): JobContext {
  let ev: CoredumpEvent | null = null;
  let invalid: Error | null = null;
  try {
    ev = parseEvent(input.data);
  } catch (e: unknown) {
    invalid = toError(e);
  }
  // A bad header (unreadable, or an invalid id): the event itself is fine, so its own id names the result.
  let analysisId: string;
  if (!ev) {
    analysisId = invalidAnalysisId(input.data);
  } else if (input.headerError) {
    analysisId = analysisIdOf(ev);
    invalid = new InvalidEventError(`the message's headers cannot be read: ${input.headerError}`);
  } else {
    try {
      analysisId = analysisIdOf(ev, { headerId: input.headerAnalysisId });
    } catch (e: unknown) {
      analysisId = analysisIdOf(ev);
      invalid = toError(e);
    }
  }
  const log = logger.child({ analysis_id: analysisId, attempt: input.attempt });
  if (announce) {
    const seen = ev ? { event_id: ev.id, file_name: ev.data.file_name, pod: ev.data.pod_name, namespace: ev.data.pod_namespace } : peek(input.data);
    log.info({ ...seen, delivery_count: input.attempt }, "Received coredump.uploaded");
  }
  return { ev, analysisId, log, invalid };
}

/** A job whose event is valid: what its stages share. */
interface Job {
  input: JobInput;
  ev: CoredumpEvent;
  analysisId: string;
  log: Logger;
  /** Milliseconds per stage, for the closing `job done` line. */
  stages: Record<string, number>;
}

/** The download stage: the dump into the job dir (decompressed on the fly). */
async function downloadStage(deps: PipelineDeps, job: Job, dir: string, expectedSize: number | null) {
  const { config, metrics } = deps;
  const { ev, input, log, stages } = job;
  const t0 = performance.now();
  const location = parseDumpUrl(ev.data.file_url, { s3Endpoint: config.s3.endpoint });
  log.info({ stage: "download", url: redactUrl(ev.data.file_url), kind: location.kind }, "download started");
  const dl = await downloadDump({
    location,
    dir,
    fileName: "core",
    md5: ev.data.md5 || null,
    expectedSize,
    maxBytes: config.maxDumpBytes,
    deadlineMs: config.download.timeoutMs,
    minBytesPerSecond: config.download.minBytesPerSecond,
    rateWindowMs: config.download.rateWindowMs,
    s3: deps.s3,
    fetch: deps.fetch,
    allowedHosts: config.allowedDumpHosts,
    allowedFileRoots: config.allowedFileRoots,
    signal: input.signal,
    onProgress: () => input.heartbeat(),
  });
  stages.download_ms = Math.round(performance.now() - t0);
  metrics?.stageSeconds.observe({ stage: "download" }, stages.download_ms / 1000);
  metrics?.bytesDownloaded.inc(dl.transferredBytes);
  log.info(
    {
      stage: "download",
      duration_ms: stages.download_ms,
      bytes: dl.bytes,
      transferred_bytes: dl.transferredBytes,
      compression: dl.compression,
      via: dl.via,
      mb_per_s: Number((dl.transferredBytes / 1e6 / Math.max(stages.download_ms / 1000, 1e-3)).toFixed(1)),
    },
    "download done",
  );
  return dl;
}

/** The analyze stage: symbols and gdb on the downloaded core (deps.analyze). */
async function analyzeStage(deps: PipelineDeps, job: Job, dir: string, dl: Awaited<ReturnType<typeof downloadDump>>): Promise<Result> {
  const { metrics } = deps;
  const { ev, input, log, stages } = job;
  const t1 = performance.now();
  log.info({ stage: "analyze" }, "gdb started");
  let gdbPrestarted: boolean | null = null;
  const result = await deps.analyze({
    analysisId: job.analysisId,
    core: dl.path,
    workDir: dir,
    signal: input.signal,
    onProgress: input.heartbeat,
    arrived: { size: dl.transferredBytes, compression: dl.compression },
    image: ev.data.image ?? null,
    onTimings: (t) => (gdbPrestarted = t.gdbPrestarted),
  });
  if (input.signal.aborted) throw new ShutdownError();
  stages.analyze_ms = Math.round(performance.now() - t1);
  metrics?.stageSeconds.observe({ stage: "analyze" }, stages.analyze_ms / 1000);
  // gdb alone, within analyze (which also prepares symbols): the stage that needs the CPU.
  if (typeof result.gdb?.duration_ms === "number") metrics?.stageSeconds.observe({ stage: "gdb" }, result.gdb.duration_ms / 1000);
  log.info(
    {
      stage: "analyze",
      duration_ms: stages.analyze_ms,
      gdb_ms: result.gdb?.duration_ms,
      // The gdb was started ahead (GDB_PRESTART): its start-up was not this job's time.
      ...(gdbPrestarted !== null ? { gdb_prestarted: gdbPrestarted } : {}),
      status: result.status,
      error_code: result.error?.code,
      signal: result.signal?.name,
      crash_thread: result.crash_thread,
      crash_frame: result.crash_frame?.function,
      signature: result.signature?.hash,
      quality: result.quality,
      // The image source: what data.image resolved to (null: not used, the warnings say why).
      ...(result.image ? { image_digest: result.image.digest } : {}),
      warnings: result.warnings,
      ...(result.deduplicated_from ? { deduplicated_from: result.deduplicated_from, address_signature: result.address_signature } : {}),
    },
    "analysis done",
  );
  return result;
}

/**
 * Download and analyze in a job dir of their own, with the dump's space
 * claimed: a permanent error becomes a failed result, anything else (and a
 * shutdown) throws for a retry. The dir, the claim and the dump file are
 * released on every path.
 */
async function downloadAndAnalyze(deps: PipelineDeps, job: Job, claimSpace: ReturnType<typeof createSpaceClaims>): Promise<Result> {
  const { ev, input, log } = job;
  let dir: string | null = null;
  let release: (() => Promise<void>) | undefined;
  const expectedSize = typeof ev.data.file_size === "number" && ev.data.file_size > 0 ? ev.data.file_size : null;
  const unclaim = await claimSpace(log, expectedSize);
  try {
    dir = await createJobDir(deps.config.workDir, job.analysisId);
    const dl = await downloadStage(deps, job, dir, expectedSize);
    release = dl.release;
    return await analyzeStage(deps, job, dir, dl);
  } catch (e: unknown) {
    if (input.signal.aborted) throw new ShutdownError();
    if (!isPermanent(e)) throw e;
    const err = e as PermanentError;
    log.warn({ error_code: err.code, err: err.message }, "job failed permanently");
    return failedResult(err.code, err.message);
  } finally {
    unclaim();
    await release?.().catch((e: unknown) => log.warn({ err: toError(e).message }, "could not close the dump file"));
    if (dir) await removeJobDir(dir).catch((e: unknown) => log.warn({ err: toError(e).message }, "could not remove job directory"));
  }
}

export function createPipeline(deps: PipelineDeps) {
  const { config, store, metrics } = deps;
  const worker = deps.workerName ?? `${os.hostname()}:${process.pid}`;
  const claimSpace = createSpaceClaims(config, deps.freeBytes ?? freeBytes);

  async function storeResult(log: Logger, analysisId: string, result: Result, ev: CoredumpEvent | null, input: JobInput): Promise<void> {
    const started = performance.now();
    const ctx = ev ? eventContext(ev) : null;
    const doc = resultDocument(result, ctx, { analysis_id: analysisId, attempt: input.attempt, worker });
    await store.store(analysisId, doc, { signal: input.signal, status: result.status });
    const ms = Math.round(performance.now() - started);
    metrics?.stageSeconds.observe({ stage: "store" }, ms / 1000);
    metrics?.results.inc({ status: result.status, error_code: result.error?.code ?? "" });
    log.info({ stage: "store", duration_ms: ms, status: result.status, error_code: result.error?.code, sinks: config.resultSinks }, "result stored");
  }

  /** A message that is not a valid event (or has a bad header): a failed result, and the consumer terms it. */
  async function rejectInvalid({ ev, analysisId, log, invalid }: JobContext, input: JobInput): Promise<JobOutcome> {
    const err = invalid ?? new InvalidEventError("not a coredump.uploaded event");
    const what = ev ? "invalid message header" : "invalid event";
    log.warn({ error_code: errorCodeOf(err), err: err.message }, `${what}; storing a failed result and terminating the message`);
    const code = ev || !isPermanent(err) ? "invalid_event" : errorCodeOf(err);
    await storeResult(log, analysisId, failedResult(code, err.message), ev, input);
    return { analysisId, status: "failed", errorCode: code, invalidEvent: true };
  }

  async function run(input: JobInput): Promise<JobOutcome> {
    const started = performance.now();
    const opened = openJob(deps.logger, input);
    if (opened.invalid || !opened.ev) return rejectInvalid(opened, input);
    const job: Job = { input, ev: opened.ev, analysisId: opened.analysisId, log: opened.log, stages: {} };
    const { ev, analysisId, log, stages } = job;
    if (config.api.putRunning) await store.markRunning(analysisId, eventContext(ev));

    const result = await downloadAndAnalyze(deps, job, claimSpace);

    const t2 = performance.now();
    await storeResult(log, analysisId, result, ev, input);
    stages.store_ms = Math.round(performance.now() - t2);
    const total = Math.round(performance.now() - started);
    log.info({ ...stages, total_ms: total, status: result.status, error_code: result.error?.code }, "job done");
    return { analysisId, status: result.status, errorCode: result.error?.code ?? null, invalidEvent: false };
  }

  /**
   * Gives up on a message: stores `retries_exhausted` so nothing is lost
   * silently. `announce`: this delivery did not run the job (it came past
   * NATS_MAX_DELIVER), so it has not logged its Received line yet.
   */
  async function storeFailure(input: JobInput, cause: Error, announce = false): Promise<JobOutcome> {
    const { ev, analysisId, log } = openJob(deps.logger, input, announce);
    const message = `gave up after ${input.attempt} deliveries; last error (${errorCodeOf(cause)}): ${cause.message}`;
    log.error({ error_code: "retries_exhausted" }, message);
    await storeResult(log, analysisId, failedResult("retries_exhausted", message), ev, input);
    return { analysisId, status: "failed", errorCode: "retries_exhausted", invalidEvent: false };
  }

  return { process: run, storeFailure };
}

export type Pipeline = ReturnType<typeof createPipeline>;
