/**
 * The event as CoreDog really sends it: a CloudEvents 1.0 structured-mode JSON
 * document of type `coredog.coredump.uploaded` (see /docs/api.md and the facts
 * in COREDOG.md). Parsed with zod where it enters the worker.
 *
 * Tolerant where real agents differ from the guide's example: optional fields
 * may be missing or null, unknown fields are kept (both levels), `file_size`
 * may be a numeric string, `md5` may be "", the node may come as `node_ip`,
 * and `data` may arrive as a JSON string (some CloudEvents SDKs do that).
 * Strict where the worker depends on a value: `type`, `specversion`, `id`,
 * `source`, `data.file_url`, and a CoreSight-assigned job id (which becomes a
 * URL path segment and a file name).
 *
 * The agent copies its token into the body (top-level `token`). Nothing built
 * here for storing or logging carries it: `eventContext` picks fields by name
 * and `redactEvent` drops every secret-looking key.
 */
import { createHash } from "node:crypto";
import * as z from "zod";
import { PermanentError, toError } from "./errors.js";
import { redactUrl } from "./storage/url.js";

export const EVENT_TYPE = "coredog.coredump.uploaded" as const;

/** What a CoreSight-assigned analysis id may look like: safe as a URL path segment and a file name. */
export const SAFE_ANALYSIS_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** True when `id` can be used unescaped in `/api/v1/analyses/{id}` and as `{id}.json`. */
/** NATS message header that carries a CoreSight-assigned analysis (job) id. */
export const ANALYSIS_ID_HEADER = "CoreSight-Analysis-Id";

export function isSafeAnalysisId(id: string): boolean {
  return SAFE_ANALYSIS_ID.test(id) && id !== "." && id !== "..";
}

/**
 * An optional string that may also arrive as null (normalized to undefined),
 * or as a number (a unix `timestamp`, a numeric pod or node name) read as text.
 */
const optString = z
  .union([z.string(), z.number().transform(String)], { error: "expected a string" })
  .nullish()
  .transform((v) => v ?? undefined);

/** A non-negative integer that may arrive as a numeric string ("52428800"). */
const count = z.union(
  [
    z.number().int().nonnegative(),
    z
      .string()
      .trim()
      .regex(/^\d+$/, "expected a non-negative integer or a numeric string")
      .transform((s) => Number(s)),
  ],
  { error: "expected a non-negative integer or a numeric string" },
);

/** A CoreSight job id: a string or a number; "" / 0 / null mean none. */
const jobId = z
  .union([z.string(), z.number().int().nonnegative()])
  .nullish()
  .transform((v) => (v === null || v === undefined || v === "" || v === 0 ? undefined : String(v)))
  .refine((v) => v === undefined || isSafeAnalysisId(v), {
    message: `must match ${SAFE_ANALYSIS_ID.source} (it becomes a URL path segment and a file name)`,
  });

export const CoredumpDataSchema = z.looseObject({
  /** Always 0 from the agent; CoreSight assigns the real one. */
  coredump_id: count.nullish().transform((v) => v ?? 0),
  file_url: z.string().trim().min(1, "must not be empty"),
  file_name: optString,
  /** Path inside the crashed container (from `file` on the core): a hint only. */
  executable_path: optString,
  file_size: count.nullish().transform((v) => v ?? undefined),
  /** Hex md5 of the raw core, lower-cased; "" when the agent did not compute it. */
  md5: z
    .string()
    .trim()
    .regex(/^([0-9a-fA-F]{32})?$/, "expected 32 hex digits or an empty string")
    .nullish()
    .transform((v) => (v ?? "").toLowerCase()),
  image: optString,
  timestamp: optString,
  pod_name: optString,
  pod_namespace: optString,
  node_name: optString,
  node_ip: optString,
  /** A job id CoreSight assigned before queueing the event, when it did. */
  analysis_id: jobId,
  job_id: jobId,
});

/** data as a JSON-encoded string is decoded first (structured mode from some SDKs). */
const dataField = z.preprocess((v) => {
  if (typeof v !== "string") return v;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return v;
  }
}, CoredumpDataSchema);

export const CoredumpUploadedEventSchema = z.looseObject({
  specversion: z.literal("1.0"),
  type: z.literal(EVENT_TYPE),
  source: z.string().min(1, "must not be empty"),
  id: z.string().min(1, "must not be empty"),
  time: optString,
  datacontenttype: optString,
  /** The agent's token, copied into the body: never store, log or echo it. Any type: it is never read. */
  token: z.unknown().optional(),
  data: dataField,
});

export type CoredumpEvent = z.output<typeof CoredumpUploadedEventSchema>;

/** The event's facts stored with every result (no token, no URL query). */
export interface EventContext {
  event_id: string;
  event_source: string;
  event_time: string | null;
  coredump_id: number;
  /** file_url without query string, fragment or user info (presigned signatures are secrets). */
  file_url: string;
  file_name: string | null;
  executable_path: string | null;
  file_size: number | null;
  md5: string | null;
  timestamp: string | null;
  pod: string | null;
  namespace: string | null;
  /** node_name, or node_ip for agents that send that instead. */
  node: string | null;
  image: string | null;
}

function pathOf(path: ReadonlyArray<PropertyKey>): string {
  if (path.length === 0) return "(root)";
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i === 0 ? "" : "."}${String(p)}`)).join("");
}

/** One zod issue as `path: what`, the form every 4xx and invalid_event message uses. */
export function issueText(issue: z.core.$ZodIssue): string {
  // "Invalid input: expected string, received undefined" says "missing" in zod's words.
  const missing = /^Invalid input: expected (.+), received undefined$/.exec(issue.message);
  const what = missing ? `required (${missing[1]})` : issue.message;
  return `${pathOf(issue.path)}: ${what}`;
}

/**
 * What is wrong with the JSON, in the worker's own words: V8's message quotes
 * the input around the error (`Unexpected token 's', ..."{"token": supersecre"...`)
 * and names the offending character, so any part of it can be an unquoted
 * secret. Only the kind of error and its position are kept.
 */
function jsonErrorText(e: unknown): string {
  const m = toError(e).message;
  const at = /at position (\d+)/.exec(m);
  const where = at ? ` at position ${at[1]}` : "";
  if (/end of (JSON )?input|Unterminated/i.test(m)) return `unexpected end of input${where}`;
  if (/control character/i.test(m)) return `bad control character in a string${where}`;
  if (/after JSON/i.test(m)) return `unexpected data after the JSON value${where}`;
  return `syntax error${where}`;
}

/**
 * Parses one message body into a CoredumpEvent.
 * @throws PermanentError("invalid_event") naming the offending field(s), or
 *   "not JSON: ..." for bytes that are not JSON at all. Redelivery cannot fix
 *   either, so the consumer terminates the message after storing a failed result.
 */
export function parseEvent(raw: Uint8Array | string): CoredumpEvent {
  const text = (typeof raw === "string" ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("utf8")).replace(/^\uFEFF/, "");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e: unknown) {
    throw new PermanentError("invalid_event", `invalid event: not JSON (${text.length} characters): ${jsonErrorText(e)}`, { cause: e });
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    const got = json === null ? "null" : Array.isArray(json) ? "an array" : typeof json;
    throw new PermanentError("invalid_event", `invalid event: (root): expected a CloudEvent JSON object, got ${got}`);
  }
  const parsed = CoredumpUploadedEventSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues;
    const shown = issues.slice(0, 6).map(issueText);
    if (issues.length > shown.length) shown.push(`and ${issues.length - shown.length} more`);
    throw new PermanentError("invalid_event", `invalid event: ${shown.join("; ")}`, { cause: parsed.error });
  }
  return parsed.data;
}

/**
 * A URL without query string, fragment and user info. Presigned URLs are
 * re-signed (new query) for the same object, and their query is a secret.
 */
export function urlWithoutQuery(raw: string): string {
  if (/^https?:\/\//i.test(raw)) {
    try {
      const u = new URL(raw);
      u.search = "";
      u.hash = "";
      u.username = "";
      u.password = "";
      return u.toString();
    } catch {
      /* fall through to the textual form */
    }
  }
  return raw.replace(/[?#].*$/s, "").replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, "$1");
}

/**
 * The analysis_id of an event's job, stable across redeliveries.
 *
 * - A job id CoreSight assigned (`data.analysis_id`, else `data.job_id`) is
 *   used as is: CoreSight already knows the job by that name.
 * - Otherwise `"a-"` + the first 32 hex digits of sha256 over
 *   (source, id, file_url without query, md5, file_name). CoreDog's id is
 *   `coredog-<unix seconds>-<agent pid>`, so two dumps of one second share it;
 *   the dump's location tells them apart, and the query is left out because
 *   the same object may be re-presigned.
 * - `coredump_id` is not used: it names the dump, not the analysis job, and
 *   the agent always sends 0.
 *
 * @throws PermanentError("invalid_event") for an assigned id that is not
 *   URL-path and file-name safe (parseEvent already rejects those).
 */
export function analysisIdOf(ev: CoredumpEvent, opts: { headerId?: string | null } = {}): string {
  // CoreSight may carry its job id on the NATS message (ANALYSIS_ID_HEADER)
  // instead of inside the event it forwards unchanged.
  const fromHeader = opts.headerId?.trim() || undefined;
  if (fromHeader !== undefined && !isSafeAnalysisId(fromHeader)) {
    throw new PermanentError("invalid_event", `invalid message: header ${ANALYSIS_ID_HEADER}: must match ${SAFE_ANALYSIS_ID.source}`);
  }
  const assigned = fromHeader ?? ev.data.analysis_id ?? ev.data.job_id;
  if (assigned !== undefined) {
    if (!isSafeAnalysisId(assigned)) {
      throw new PermanentError("invalid_event", `invalid event: data.analysis_id: must match ${SAFE_ANALYSIS_ID.source}`);
    }
    return assigned;
  }
  const key = JSON.stringify([ev.source, ev.id, urlWithoutQuery(ev.data.file_url), ev.data.md5 ?? "", ev.data.file_name ?? ""]);
  return "a-" + createHash("sha256").update(key).digest("hex").slice(0, 32);
}

/** The event's facts stored with every result; never the token, never the URL's query. */
export function eventContext(ev: CoredumpEvent): EventContext {
  const d = ev.data;
  return {
    event_id: ev.id,
    event_source: ev.source,
    event_time: ev.time ?? null,
    coredump_id: d.coredump_id,
    file_url: urlWithoutQuery(d.file_url),
    file_name: d.file_name ?? null,
    executable_path: d.executable_path ?? null,
    file_size: d.file_size ?? null,
    md5: d.md5 || null,
    timestamp: d.timestamp ?? null,
    pod: d.pod_name ?? null,
    namespace: d.pod_namespace ?? null,
    node: d.node_name ?? d.node_ip ?? null,
    image: d.image ?? null,
  };
}

const SECRET_KEY = /^(token|.*_token|password|passwd|secret|.*_secret|authorization|credentials?|access_?key(_?id)?|secret_?access_?key)$/i;

function withoutSecrets(value: unknown, depth: number): unknown {
  if (typeof value === "string") return value;
  if (value === null || typeof value !== "object" || depth > 8) return value;
  if (Array.isArray(value)) return value.map((v) => withoutSecrets(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (SECRET_KEY.test(k)) continue;
    out[k] = withoutSecrets(v, depth + 1);
  }
  return out;
}

/**
 * The event for logs: the token (and any other secret-named key, at any
 * depth) removed, and `file_url` with its presigned signature redacted.
 */
export function redactEvent(ev: CoredumpEvent): Record<string, unknown> {
  const out = withoutSecrets(ev, 0) as Record<string, unknown>;
  const data = out.data as Record<string, unknown>;
  if (typeof data.file_url === "string") data.file_url = redactUrl(data.file_url);
  return out;
}
