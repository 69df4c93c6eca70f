/** docs/openapi.json is the generated document (make schema), and the API serves the same. */
import { describe, expect, it } from "@jest/globals";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { openApiDocument, openApiJson } from "../../api/openapi.js";
import { startApiService } from "../../api/service.js";
import { createLogger } from "../../lib/log.js";
import { repoRoot } from "../helpers/fixtures.js";
import { apiConfig, call } from "./helpers.js";

function refs(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) v.forEach((x) => refs(x, out));
  else if (v && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      if (k === "$ref" && typeof x === "string") out.push(x);
      else refs(x, out);
    }
  }
  return out;
}

describe("OpenAPI 3.1 document", () => {
  it("docs/openapi.json matches the code (regenerate with make schema)", async () => {
    expect(await fs.readFile(path.join(repoRoot, "docs/openapi.json"), "utf8")).toBe(openApiJson());
  });

  it("every $ref resolves, and every route of the API is described", () => {
    const doc = openApiDocument() as { openapi: string; components: { schemas: Record<string, unknown> }; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toBe("3.1.0");
    for (const r of refs(doc)) {
      expect(r).toMatch(/^#\/components\/schemas\//);
      expect(Object.keys(doc.components.schemas)).toContain(r.split("/").pop());
    }
    const ops = Object.entries(doc.paths).flatMap(([p, item]) =>
      Object.keys(item)
        .filter((m) => m !== "parameters")
        .map((m) => `${m.toUpperCase()} ${p}`),
    );
    expect(ops.sort()).toEqual(
      [
        "POST /",
        "POST /api/v1/events",
        "GET /api/v1/analyses",
        "GET /api/v1/analyses/{id}",
        "PUT /api/v1/analyses/{id}",
        "POST /api/v1/analyses/{id}/reprocess",
        "GET /api/v1/groups",
        "GET /api/v1/groups/{hash}",
        "PATCH /api/v1/groups/{hash}",
        "GET /api/v1/health",
        "GET /api/v1/openapi.json",
        "GET /metrics",
      ].sort(),
    );
  });

  it("is served at /api/v1/openapi.json without a token", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-openapi-"));
    const api = await startApiService(apiConfig(`sqlite:${path.join(dir, "c.db")}`), { logger: createLogger({ level: "silent", stdout: false }) });
    try {
      const res = await call(api.url, "GET", "/api/v1/openapi.json");
      expect(res.status).toBe(200);
      expect(res.json).toEqual(openApiDocument());
    } finally {
      await api.stop();
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
