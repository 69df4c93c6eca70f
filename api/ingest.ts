/**
 * A CoreDog report as it arrives over HTTP, turned into the event the worker
 * consumes. CloudEvents HTTP binding, both modes:
 *
 * - structured (what CoreDog sends): `Content-Type: application/json` or
 *   `application/cloudevents+json`, the whole CloudEvent in the body, the
 *   agent's token also as a top-level `token` field;
 * - binary: the attributes in `ce-*` headers (`ce-specversion` marks the
 *   mode), the body is `data` (JSON).
 *
 * The event is validated by lib/events.ts, the same parser the worker uses,
 * so whatever the API accepts the worker can analyze. The queued copy has no
 * token and carries the coredump_id CoreSight assigned.
 */
import type http from "node:http";
import { analysisIdOf, eventContext, parseEvent, type CoredumpEvent } from "../lib/events.js";
import { toError } from "../lib/errors.js";
import { ApiError } from "./errors.js";
import type { NewCoredump } from "./db/schema.js";

export interface IncomingReport {
  event: CoredumpEvent;
  analysisId: string;
  /** The top-level `token` of a structured body, when it is a string. */
  bodyToken: string | undefined;
}

function mediaType(req: http.IncomingMessage): string {
  return (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
}

function isJsonType(t: string): boolean {
  return t === "application/json" || t === "application/cloudevents+json" || /^application\/[a-z0-9.+-]*\+json$/.test(t);
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** JSON.parse that says "not JSON" without quoting the body (it holds a token). */
function parseJson(body: Buffer, what: string): unknown {
  const text = body.toString("utf8").replace(/^\uFEFF/, "");
  try {
    return JSON.parse(text) as unknown;
  } catch (e: unknown) {
    const why = toError(e).message.replace(/"(?:[^"\\]|\\.)*"/g, '"…"');
    throw new ApiError(400, "invalid_json", `${what} is not JSON (${body.length} bytes): ${why}`, { cause: e });
  }
}

/**
 * The request's body as a CloudEvent object, before validation. Throws 415
 * for a content type that is neither mode, 400 for a body that is not JSON.
 */
export function cloudEventOf(req: http.IncomingMessage, body: Buffer): Record<string, unknown> {
  const type = mediaType(req);
  const binary = header(req, "ce-specversion") !== undefined && type !== "application/cloudevents+json";
  if (binary) {
    if (type !== "" && !isJsonType(type)) {
      throw new ApiError(415, "unsupported_media_type", `Content-Type: binary-mode data must be JSON (application/json), got ${JSON.stringify(type)}`);
    }
    const event: Record<string, unknown> = { data: parseJson(body, "the body (binary-mode data)") };
    for (const [k, v] of Object.entries(req.headers)) {
      if (k.startsWith("ce-") && typeof v === "string") event[k.slice(3)] = v;
    }
    event.datacontenttype ??= type || "application/json";
    return event;
  }
  if (!isJsonType(type)) {
    throw new ApiError(
      415,
      "unsupported_media_type",
      `Content-Type: expected application/json or application/cloudevents+json (or ce-* headers for binary mode), got ${JSON.stringify(type || "(none)")}`,
    );
  }
  const json = parseJson(body, "the body");
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new ApiError(400, "invalid_event", `(root): expected a CloudEvent JSON object, got ${Array.isArray(json) ? "an array" : json === null ? "null" : typeof json}`);
  }
  return json as Record<string, unknown>;
}

/** The token a structured body carries (CoreDog copies its bearer token there). */
export function bodyTokenOf(event: Record<string, unknown>): string | undefined {
  return typeof event.token === "string" ? event.token : undefined;
}

/** Validates the CloudEvent and derives the analysis id the worker will use. 400 names the fields at fault. */
export function validateReport(event: Record<string, unknown>): IncomingReport {
  let ev: CoredumpEvent;
  try {
    ev = parseEvent(JSON.stringify(event));
  } catch (e: unknown) {
    throw new ApiError(400, "invalid_event", toError(e).message.replace(/^invalid event: /, ""), { cause: e });
  }
  return { event: ev, analysisId: analysisIdOf(ev), bodyToken: bodyTokenOf(event) };
}

/** The coredump row a report creates (no token, no URL query). */
export function coredumpOf(ev: CoredumpEvent, receivedAt: string): Omit<NewCoredump, "id"> {
  const c = eventContext(ev);
  return {
    received_at: receivedAt,
    event_id: c.event_id,
    event_source: c.event_source,
    file_url: c.file_url,
    file_name: c.file_name,
    executable_path: c.executable_path,
    file_size: c.file_size,
    md5: c.md5,
    image: c.image,
    pod: c.pod,
    namespace: c.namespace,
    node: c.node,
    timestamp: c.timestamp,
  };
}

/**
 * The event as queued for the worker: the agent's event with its token
 * removed and the assigned coredump_id. The file_url keeps its query: the
 * worker needs the presigned signature to download the dump.
 */
export function queuedEvent(ev: CoredumpEvent, coredumpId: number): string {
  const { token: _token, ...rest } = ev;
  return JSON.stringify({ ...rest, data: { ...ev.data, coredump_id: coredumpId } });
}
