/**
 * The OpenAPI 3.1 document of the CoreSight API, generated from the zod
 * schemas the routes validate with and answer by (api/schemas.ts, the
 * event and result schemas of lib/). Served at /api/v1/openapi.json and
 * committed as docs/openapi.json (`make schema`; a test fails on drift).
 */
import * as z from "zod";
import { CoredumpUploadedEventSchema } from "../lib/events.js";
import { ResultDocumentSchema } from "../lib/results/document.js";
import * as S from "./schemas.js";

type Json = Record<string, unknown>;

function schemaOf(schema: z.ZodType, io: "input" | "output"): Json {
  // The event's preprocess (data as a JSON string) has no JSON Schema form: it is shown as the object it decodes to.
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { target: "draft-2020-12", io, unrepresentable: "any" }) as Json;
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: string, description: string) => ({ description, content: { "application/json": { schema: ref(name) } } });
const errors = (...codes: number[]) =>
  Object.fromEntries(
    codes.map((c) => [
      String(c),
      json(
        "Error",
        {
          400: "invalid request: the message names the field",
          401: "no or unknown token",
          403: "a token of another role",
          404: "not found",
          409: "a result is already stored",
          413: "body too large",
          415: "unsupported content type",
          503: "not stored; try again",
        }[c] ?? "error",
      ),
    ]),
  );

function queryParameters(schema: z.ZodObject): Json[] {
  const props = (schemaOf(schema, "input").properties ?? {}) as Record<string, Json>;
  return Object.entries(props).map(([name, s]) => ({ name, in: "query", required: false, schema: s }));
}

const idParam = { name: "id", in: "path", required: true, schema: { type: "string", pattern: "^[A-Za-z0-9._-]{1,128}$" } };
const hashParam = { name: "hash", in: "path", required: true, schema: { type: "string" } };

export function openApiDocument(): Json {
  const ingest = {
    summary: "Take a CoreDog report (coredog.coredump.uploaded CloudEvent)",
    description:
      "Structured mode (application/json, application/cloudevents+json) or binary mode (ce-* headers, data as the body). Agent token in Authorization: Bearer, or the body's top-level `token` when the header is absent. The answer is sent only after the report is committed.",
    security: [{ agentToken: [] }],
    requestBody: { required: true, content: { "application/json": { schema: ref("CoreDogEvent") }, "application/cloudevents+json": { schema: ref("CoreDogEvent") } } },
    responses: {
      "202": json("Accepted", "committed and queued"),
      "200": json("Accepted", "the same report again: same ids, nothing new"),
      ...errors(400, 401, 403, 413, 415, 503),
    },
  };
  const readers = [{ workerToken: [] }, { readToken: [] }];
  return {
    openapi: "3.1.0",
    info: { title: "CoreSight API", version: "1", description: "CoreDog reports in, analysis results from the worker pool, crash groups out. See docs/api.md." },
    components: {
      securitySchemes: {
        agentToken: { type: "http", scheme: "bearer", description: "CORESIGHT_AGENT_TOKENS or `token create --role agent`" },
        workerToken: { type: "http", scheme: "bearer", description: "CORESIGHT_WORKER_TOKENS or `token create --role worker`" },
        readToken: { type: "http", scheme: "bearer", description: "CORESIGHT_READ_TOKENS or `token create --role read`" },
      },
      schemas: {
        CoreDogEvent: schemaOf(CoredumpUploadedEventSchema, "input"),
        ResultDocument: schemaOf(ResultDocumentSchema, "output"),
        RunningStatus: schemaOf(S.RunningStatusSchema, "input"),
        Stored: schemaOf(S.StoredSchema, "output"),
        Accepted: schemaOf(S.AcceptedSchema, "output"),
        Error: schemaOf(S.ErrorBodySchema, "output"),
        Health: schemaOf(S.HealthSchema, "output"),
        AnalysisSummary: schemaOf(S.AnalysisSummarySchema, "output"),
        Analysis: schemaOf(S.AnalysisDetailSchema, "output"),
        AnalysisPage: schemaOf(S.AnalysisPageSchema, "output"),
        Group: schemaOf(S.GroupSchema, "output"),
        GroupDetail: schemaOf(S.GroupDetailSchema, "output"),
        GroupPage: schemaOf(S.GroupPageSchema, "output"),
        PatchGroup: schemaOf(S.PatchGroupSchema, "input"),
      },
    },
    paths: {
      "/": { post: { ...ingest, operationId: "ingestAtRoot", description: `${ingest.description} CoreDog posts to its configured apiUrl, the API root.` } },
      "/api/v1/events": { post: { ...ingest, operationId: "ingest" } },
      "/api/v1/analyses": {
        get: {
          operationId: "listAnalyses",
          summary: "Analyses, newest first",
          security: readers,
          parameters: queryParameters(S.AnalysisQuerySchema),
          responses: { "200": json("AnalysisPage", "a page"), ...errors(400, 401, 403) },
        },
      },
      "/api/v1/analyses/{id}": {
        parameters: [idParam],
        get: {
          operationId: "getAnalysis",
          summary: "An analysis with its coredump and result",
          security: readers,
          responses: { "200": json("Analysis", "the analysis"), ...errors(401, 403, 404) },
        },
        put: {
          operationId: "storeResult",
          summary: "The worker stores a result or a running status (docs/api.md, result contract)",
          security: [{ workerToken: [] }],
          requestBody: { required: true, content: { "application/json": { schema: { oneOf: [ref("ResultDocument"), ref("RunningStatus")] } } } },
          responses: { "201": json("Stored", "first result"), "200": json("Stored", "replaced, or running"), ...errors(400, 401, 403, 409, 413) },
        },
      },
      "/api/v1/analyses/{id}/reprocess": {
        parameters: [idParam],
        post: {
          operationId: "reprocess",
          summary: "Queue the analysis again through the outbox",
          security: [{ workerToken: [] }],
          responses: { "202": json("Accepted", "queued again"), ...errors(401, 403, 404) },
        },
      },
      "/api/v1/groups": {
        get: {
          operationId: "listGroups",
          summary: "Crash groups, most recently seen first",
          security: readers,
          parameters: queryParameters(S.GroupQuerySchema),
          responses: { "200": json("GroupPage", "a page"), ...errors(400, 401, 403) },
        },
      },
      "/api/v1/groups/{hash}": {
        parameters: [hashParam],
        get: { operationId: "getGroup", summary: "A crash group", security: readers, responses: { "200": json("GroupDetail", "the group"), ...errors(401, 403, 404) } },
        patch: {
          operationId: "resolveGroup",
          summary: "Mark a group resolved or not",
          security: [{ workerToken: [] }],
          requestBody: { required: true, content: { "application/json": { schema: ref("PatchGroup") } } },
          responses: { "200": json("GroupDetail", "the group"), ...errors(400, 401, 403, 404) },
        },
      },
      "/api/v1/health": {
        get: {
          operationId: "health",
          summary: "Database and NATS reachable",
          security: [],
          responses: { "200": json("Health", "all fine"), "503": json("Health", "the failing part says why") },
        },
      },
      "/api/v1/openapi.json": { get: { operationId: "openapi", summary: "This document", security: [], responses: { "200": { description: "OpenAPI 3.1" } } } },
      "/metrics": { get: { operationId: "metrics", summary: "Prometheus metrics", security: [], responses: { "200": { description: "text exposition format" } } } },
    },
  };
}

/** The committed text (docs/openapi.json). */
export function openApiJson(): string {
  return JSON.stringify(openApiDocument(), null, 2) + "\n";
}
