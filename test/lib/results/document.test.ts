import { describe, expect, it } from "@jest/globals";
import { eventContext } from "../../../lib/events.js";
import { failedResult, ResultSchema } from "../../../lib/result.js";
import { resultDocument, ResultDocumentSchema } from "../../../lib/results/document.js";
import { completedResult, sampleEvent } from "./fixtures.js";

describe("resultDocument", () => {
  it("is the v1 result plus the envelope, valid against both schemas", () => {
    const ctx = eventContext(sampleEvent());
    const doc = resultDocument(completedResult(), ctx, { analysis_id: "a-1", attempt: 2, worker: "host:42" });
    expect(doc).toMatchObject({ analysis_id: "a-1", attempt: 2, worker_id: "host:42", event: ctx, status: "completed", schema_version: 1 });
    expect(ResultDocumentSchema.safeParse(doc).success).toBe(true);
    // The result part is untouched: it still parses as a v1 result with the same fields.
    expect(ResultSchema.parse(doc)).toEqual(ResultSchema.parse(completedResult()));
  });

  it("accepts a null context (a message that was not a valid event)", () => {
    const doc = resultDocument(failedResult("invalid_event", "invalid event: data.file_url: required (string)"), null, {
      analysis_id: "invalid-00",
      attempt: 1,
      worker: "w",
    });
    expect(doc.event).toBeNull();
    expect(ResultDocumentSchema.safeParse(doc).success).toBe(true);
  });

  it("scrubs presigned signatures and bearer tokens from the error message", () => {
    const doc = resultDocument(
      failedResult("download_failed", "GET http://b.example/core?X-Amz-Signature=deadbeef123&X-Amz-Expires=60 failed; Authorization: Bearer abc.def"),
      null,
      { analysis_id: "a", attempt: 1, worker: "w" },
    );
    expect(doc.error!.message).not.toContain("deadbeef123");
    expect(doc.error!.message).not.toContain("abc.def");
    expect(doc.error!.message).toContain("X-Amz-Expires=60");
  });
});
