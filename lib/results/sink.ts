/**
 * What a result sink is, apart from any sink: the interface the http, file
 * and nats sinks implement and the ResultStore the consumer stores through
 * (lib/results/sinks.ts builds it). Its own module so the sinks depend on
 * the interface, not on the module that imports them.
 */
import { PermanentError } from "../errors.js";
import { isSafeAnalysisId } from "../events.js";

export type ResultStatus = "completed" | "failed";

export interface StoreOptions {
  signal?: AbortSignal;
  status: ResultStatus;
}

export interface ResultSink {
  name: string;
  store(analysisId: string, doc: object, opts: StoreOptions): Promise<void>;
  /** Tells the API a job started (CORESIGHT_PUT_RUNNING). Best effort: never throws. */
  markRunning?(analysisId: string, ctx: object | null, opts: { signal?: AbortSignal }): Promise<void>;
}

export interface ResultStore {
  /** Names of the sinks, in configuration order. */
  readonly sinks: readonly string[];
  /** Stores in every sink; throws TransientError or PermanentError when any sink did not store. */
  store(analysisId: string, doc: object, opts: StoreOptions): Promise<void>;
  /** Best effort; never throws. */
  markRunning(analysisId: string, ctx: object | null, opts?: { signal?: AbortSignal }): Promise<void>;
}

/** Rejects an analysis_id that is not safe as a path segment and a file name (a bug upstream). */
export function assertSafeAnalysisId(analysisId: string): void {
  if (!isSafeAnalysisId(analysisId)) {
    throw new PermanentError("invalid_input", `unsafe analysis_id ${JSON.stringify(analysisId.slice(0, 160))}: expected [A-Za-z0-9._-]{1,128}`);
  }
}
