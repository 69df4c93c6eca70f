/**
 * The API's request and response bodies as zod schemas: the views
 * (api/views.ts) are typed by them, and the OpenAPI document
 * (api/openapi.ts) is generated from them, so the document cannot drift
 * from what the routes answer without tsc or the drift test noticing.
 */
import * as z from "zod";

export const ErrorBodySchema = z.object({
  error: z.string().meta({ description: "stable code: unauthorized, forbidden, invalid_event, invalid_json, payload_too_large, …" }),
  message: z.string().meta({ description: "what is wrong, naming the field or header; never a token" }),
});

export const AcceptedSchema = z.object({
  coredump_id: z.number().int().positive().meta({ description: "assigned by CoreSight (the agent sends 0)" }),
  analysis_id: z.string(),
  status: z.enum(["queued", "running", "completed", "failed"]),
});

export const HealthSchema = z.object({
  status: z.enum(["ok", "unavailable"]),
  database: z.string().meta({ description: '"ok" or why not' }),
  nats: z.string().meta({ description: '"ok" or why not' }),
});

export const CoredumpViewSchema = z.object({
  coredump_id: z.number().int(),
  received_at: z.string(),
  event_id: z.string(),
  event_source: z.string(),
  file_url: z.string().meta({ description: "without query string (a presigned signature is a secret)" }),
  file_name: z.string().nullable(),
  executable_path: z.string().nullable(),
  file_size: z.number().int().nullable(),
  md5: z.string().nullable(),
  image: z.string().nullable(),
  pod: z.string().nullable(),
  namespace: z.string().nullable(),
  node: z.string().nullable(),
  timestamp: z.string().nullable(),
});

export const AnalysisSummarySchema = z.object({
  analysis_id: z.string(),
  coredump_id: z.number().int(),
  status: z.enum(["queued", "running", "completed", "failed"]),
  created_at: z.string(),
  updated_at: z.string(),
  started_at: z.string().nullable(),
  completed_at: z.string().nullable(),
  signature: z.object({ hash: z.string(), text: z.string().nullable() }).nullable(),
  quality: z.number().nullable(),
  error_code: z.string().nullable(),
  attempt: z.number().int().nullable(),
  worker_id: z.string().nullable(),
  reprocess_count: z.number().int(),
  coredump: CoredumpViewSchema,
});

export const AnalysisDetailSchema = AnalysisSummarySchema.extend({
  result: z.unknown().meta({ description: "the stored result document (ResultDocument), null until the worker stored one" }),
});

export const AnalysisPageSchema = z.object({ items: z.array(AnalysisSummarySchema), next_cursor: z.string().nullable() });

export const GroupSchema = z.object({
  signature_hash: z.string(),
  signature_text: z.string(),
  frames: z.array(z.string()),
  state: z.enum(["new", "ongoing", "resolved", "regressed"]),
  new: z.boolean(),
  regressed: z.boolean(),
  count: z.number().int(),
  first_seen: z.string(),
  last_seen: z.string(),
  distinct: z.object({ pods: z.number().int(), namespaces: z.number().int(), images: z.number().int(), nodes: z.number().int() }),
  resolved_at: z.string().nullable(),
  latest_analysis_id: z.string(),
  best_analysis_id: z.string(),
  best_quality: z.number().nullable(),
});

export const GroupDetailSchema = GroupSchema.extend({
  pods: z.array(z.string()),
  namespaces: z.array(z.string()),
  images: z.array(z.string()),
  nodes: z.array(z.string()),
});

export const GroupPageSchema = z.object({ items: z.array(GroupSchema), next_cursor: z.string().nullable() });

export const PatchGroupSchema = z.strictObject({ resolved: z.boolean() });

export const RunningStatusSchema = z.looseObject({
  analysis_id: z.string(),
  status: z.literal("running"),
  started_at: z.string().optional(),
});

export const StoredSchema = z.object({ analysis_id: z.string(), status: z.enum(["running", "completed", "failed"]) });

const limit = z.coerce.number().int().min(1).max(100).default(50).meta({ description: "page size (1–100)" });
const cursor = z.string().optional().meta({ description: "next_cursor of the previous page" });

export const AnalysisQuerySchema = z.object({
  status: z.enum(["queued", "running", "completed", "failed"]).optional(),
  namespace: z.string().min(1).optional(),
  pod: z.string().min(1).optional(),
  image: z.string().min(1).optional(),
  signature: z.string().min(1).optional().meta({ description: "signature hash" }),
  since: z
    .string()
    .refine((s) => !Number.isNaN(Date.parse(s)), "expected an ISO 8601 time")
    .transform((s) => new Date(s).toISOString())
    .optional()
    .meta({ description: "ISO 8601 time: analyses created at or after it" }),
  limit,
  cursor,
});

export const GroupQuerySchema = z.object({ limit, cursor });
