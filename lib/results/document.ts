/**
 * The result document every sink stores: the v1 result (lib/result.ts) with
 * the job's envelope fields beside it. The result's own fields are kept
 * untouched, so the document still validates against docs/result.schema.json
 * read without its `additionalProperties: false` on the top level, and the
 * envelope is described by `ResultDocumentSchema` (docs/api.md).
 */
import * as z from "zod";
import type { EventContext } from "../events.js";
import { scrubSecrets } from "../log.js";
import { ResultSchema, type Result } from "../result.js";

export const EventContextSchema = z.object({
  event_id: z.string(),
  event_source: z.string(),
  event_time: z.string().nullable(),
  coredump_id: z.number().int().nonnegative(),
  file_url: z.string(),
  file_name: z.string().nullable(),
  executable_path: z.string().nullable(),
  file_size: z.number().int().nonnegative().nullable(),
  md5: z.string().nullable(),
  timestamp: z.string().nullable(),
  pod: z.string().nullable(),
  namespace: z.string().nullable(),
  node: z.string().nullable(),
  image: z.string().nullable(),
});

/** The PUT body / file / CloudEvent data: result v1 + envelope. */
export const ResultDocumentSchema = ResultSchema.extend({
  analysis_id: z.string(),
  /** Delivery of the event's message that produced this result (1-based). */
  attempt: z.number().int().positive(),
  /** Which worker process stored it (`host:pid`). */
  worker_id: z.string(),
  /** The event's facts; null when the message was not a valid event. */
  event: EventContextSchema.nullable(),
});
export type ResultDocument = z.infer<typeof ResultDocumentSchema>;

/**
 * Builds the document for one stored result.
 *
 * The worker name goes to `worker_id`, not `worker`: v1 already has an
 * optional `worker: { version, host }` object and a key must not change type.
 * An error message is scrubbed of presigned signatures and bearer tokens, since
 * it may quote a URL.
 */
export function resultDocument(result: Result, ctx: EventContext | null, meta: { analysis_id: string; attempt: number; worker: string }): ResultDocument {
  const error = result.error ? { ...result.error, message: scrubSecrets(result.error.message) } : undefined;
  return {
    analysis_id: meta.analysis_id,
    ...result,
    ...(error ? { error } : {}),
    attempt: meta.attempt,
    worker_id: meta.worker,
    event: ctx,
  };
}
