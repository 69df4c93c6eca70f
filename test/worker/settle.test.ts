/**
 * decide(): one test per row of the settle table, and docs/operations.md
 * holding exactly that table.
 */
import { describe, expect, it } from "@jest/globals";
import fs from "node:fs";
import path from "node:path";
import { PermanentError, ShutdownError, TransientError } from "../../lib/errors.js";
import { SETTLE_ROWS, abandoned, decide, settleTable, type Decision, type JobEnd } from "../../worker/settle.js";
import { repoRoot } from "../helpers/fixtures.js";

const policy = { maxDeliver: 5, backoffMs: [5000, 30000, 120000] };
const transient = new TransientError("download_failed", "S3 answered 503");

describe("decide", () => {
  const cases: Array<[string, JobEnd, number, Partial<Decision>]> = [
    ["stored result → ack", { kind: "stored", invalidEvent: false }, 1, { action: "ack", storeFailure: false, row: "stored" }],
    ["stored result on the last delivery → ack", { kind: "stored", invalidEvent: false }, 5, { action: "ack", storeFailure: false, row: "stored" }],
    ["invalid event, failure stored → term", { kind: "stored", invalidEvent: true }, 1, { action: "term", storeFailure: false, row: "invalid_event" }],
    ["transient on delivery 1 → nak after backoff[0], jittered", { kind: "threw", error: transient }, 1, { action: "nak", delayMs: 5000, jitter: true, row: "transient" }],
    ["transient on delivery 3 → nak after backoff[2]", { kind: "threw", error: transient }, 3, { action: "nak", delayMs: 120000, row: "transient" }],
    ["transient on delivery 4 → the last backoff repeats", { kind: "threw", error: transient }, 4, { action: "nak", delayMs: 120000, row: "transient" }],
    [
      "transient with a longer Retry-After → exactly Retry-After, not jittered",
      { kind: "threw", error: new TransientError("download_failed", "429", { retryAfterMs: 60000 }) },
      1,
      { action: "nak", delayMs: 60000, jitter: false, row: "transient" },
    ],
    ["an unexpected error counts as transient", { kind: "threw", error: new Error("bug") }, 2, { action: "nak", delayMs: 30000, row: "transient" }],
    [
      "result rejected (permanent) → nak at the longest backoff",
      { kind: "threw", error: new PermanentError("result_rejected", "400") },
      1,
      { action: "nak", delayMs: 120000, storeFailure: false, row: "store_rejected" },
    ],
    ["transient on the last delivery → store retries_exhausted, ack", { kind: "threw", error: transient }, 5, { action: "ack", storeFailure: true, row: "last_delivery" }],
    [
      "rejected on the last delivery → store retries_exhausted, ack",
      { kind: "threw", error: new PermanentError("result_rejected", "400") },
      5,
      { action: "ack", storeFailure: true, row: "last_delivery" },
    ],
    ["delivered past the limit (holder died) → store retries_exhausted, ack", { kind: "abandoned" }, 6, { action: "ack", storeFailure: true, row: "abandoned" }],
    [
      "the failure could not be stored → nak at the longest backoff",
      { kind: "failure_not_stored", error: transient },
      5,
      { action: "nak", delayMs: 120000, storeFailure: false, row: "failure_not_stored" },
    ],
    ["shutdown → nak now, nothing stored", { kind: "threw", error: new ShutdownError() }, 5, { action: "nak", delayMs: 0, storeFailure: false, row: "shutdown" }],
    ["aborted job → nak now", { kind: "threw", error: new Error("aborted"), aborted: true }, 2, { action: "nak", delayMs: 0, row: "shutdown" }],
  ];
  it.each(cases)("%s", (_what, end, delivery, want) => {
    expect(decide(end, delivery, policy)).toMatchObject(want);
  });

  it("covers every row of the table", () => {
    const rows = new Set(cases.map(([, end, delivery]) => decide(end, delivery, policy).row));
    expect([...rows].sort()).toEqual(SETTLE_ROWS.map((r) => r.row).sort());
  });

  it("a job is not run again past NATS_MAX_DELIVER", () => {
    expect(abandoned(5, policy)).toBe(false);
    expect(abandoned(6, policy)).toBe(true);
  });
});

describe("docs/operations.md", () => {
  it("holds the settle table exactly as settleTable() renders it", () => {
    const doc = fs.readFileSync(path.join(repoRoot, "docs", "operations.md"), "utf8");
    expect(doc).toContain(settleTable());
  });
});
