/**
 * Crash storms, one gdb per new crash: the fleet's memory of which address
 * signatures (./addressSignature.ts) already have a completed analysis, in a
 * JetStream KV bucket every worker of the pool shares, and what a job does
 * with it.
 *
 *   key   the address signature's key (hex)
 *   value the first completed analysis of it: its analysis_id, what a
 *         deduplicated result copies (signal, crash thread, crash frame,
 *         signature, quality, abort message, runtime), and how many full
 *         analyses it has had (`analyses`)
 *   TTL   DEDUP_TTL_MS, the bucket's max age: counted from the last full
 *         analysis, so a storm older than that gets one fresh gdb run
 *
 * The decision is one pure function, `shouldReference`: reference a prior
 * analysis only when it has had DEDUP_AFTER full analyses. Two workers that
 * see a new signature at the same moment both analyze it fully (the safe
 * side); the count is best effort for the same reason.
 *
 * The store never fails a job: a KV error on lookup means a full analysis,
 * on record a lost count (both reported through `onError`).
 */
import type { NatsConnection } from "@nats-io/transport-node";
import type { Result } from "../result.js";
import { SCHEMA_VERSION } from "../failedResult.js";
import type { AddressSignature } from "./addressSignature.js";

/** What the bucket keeps per address signature. */
export interface PriorAnalysis {
  analysis_id: string;
  analyses: number;
  signal: Result["signal"];
  crash_thread: Result["crash_thread"];
  crash_frame: Result["crash_frame"];
  signature: Result["signature"];
  quality: number;
  abort_message: string | null;
  runtime?: Result["runtime"];
}

/** The bucket, as the deduplicator uses it (tests and benches may hand in a map). */
export interface DedupStore {
  get(key: string): Promise<PriorAnalysis | null>;
  put(key: string, prior: PriorAnalysis): Promise<void>;
}

/** One job's view: bound to its analysis_id; what analyzeDump calls. */
export interface JobDedup {
  /** The prior analysis to reference instead of running gdb, or null to analyze fully. */
  lookup(sig: AddressSignature): Promise<PriorAnalysis | null>;
  /** Counts a completed full analysis of `sig` (the first one becomes the one referenced). */
  record(sig: AddressSignature, result: Result): Promise<void>;
}

/** The policy (pure): reference `prior` once it has had `after` full analyses. */
export function shouldReference(prior: PriorAnalysis | null, after: number): prior is PriorAnalysis {
  return prior !== null && prior.analyses >= after;
}

/**
 * Opens (creating when missing) the KV bucket `bucket` with `ttlMs` as its
 * max age and one value per key.
 */
export async function openDedupStore(nc: NatsConnection, opts: { bucket: string; ttlMs: number }): Promise<DedupStore> {
  // Loaded here: only a worker with DEDUP=on needs the KV client.
  const { Kvm } = await import("@nats-io/kv");
  const kv = await new Kvm(nc).create(opts.bucket, { ttl: opts.ttlMs, history: 1 });
  return {
    async get(key) {
      const e = await kv.get(key);
      if (!e || e.operation !== "PUT" || e.length === 0) return null;
      return e.json<PriorAnalysis>();
    },
    async put(key, prior) {
      await kv.put(key, JSON.stringify(prior));
    },
  };
}

/** The deduplicator of a pool: `forJob(analysisId)` is what one job hands to analyzeDump. */
export function createDeduplicator(store: DedupStore, opts: { after: number; onError?: (what: string, e: unknown) => void }) {
  const report = (what: string, e: unknown) => {
    try {
      opts.onError?.(what, e);
    } catch {
      /* a failing logger must not fail the job */
    }
  };
  return {
    forJob(analysisId: string): JobDedup {
      return {
        async lookup(sig) {
          try {
            const prior = await store.get(sig.key);
            return shouldReference(prior, opts.after) && prior.analysis_id !== analysisId ? prior : null;
          } catch (e: unknown) {
            report("lookup", e);
            return null;
          }
        },
        async record(sig, result) {
          if (result.status !== "completed" || result.signature === null) return;
          try {
            const prior = await store.get(sig.key);
            const first = prior ?? {
              analysis_id: analysisId,
              analyses: 0,
              signal: result.signal,
              crash_thread: result.crash_thread,
              crash_frame: result.crash_frame,
              signature: result.signature,
              quality: result.quality,
              abort_message: result.abort_message,
              ...(result.runtime ? { runtime: result.runtime } : {}),
            };
            await store.put(sig.key, { ...first, analyses: first.analyses + 1 });
          } catch (e: unknown) {
            report("record", e);
          }
        },
      };
    },
  };
}

/**
 * The result of a deduplicated job (pure): completed, what crashed copied
 * from `prior`, `deduplicated_from` naming it, this dump's own core facts,
 * and no threads, registers or gdb run (they are in the referenced analysis).
 */
export function deduplicatedResult(prior: PriorAnalysis, sig: AddressSignature, core: NonNullable<Result["core"]>): Result {
  return {
    schema_version: SCHEMA_VERSION,
    status: "completed",
    signal: prior.signal,
    crash_thread: prior.crash_thread,
    threads: [],
    crash_frame: prior.crash_frame,
    signature: prior.signature,
    quality: prior.quality,
    shared_libraries: [],
    abort_message: prior.abort_message,
    ...(prior.runtime ? { runtime: prior.runtime } : {}),
    gdb: null,
    core,
    deduplicated_from: prior.analysis_id,
    address_signature: sig.key,
    warnings: [
      `deduplicated: the same crash (address signature ${sig.key}) was analyzed as ${prior.analysis_id}; gdb did not run, threads, locals and registers are in that analysis`,
    ],
  };
}
