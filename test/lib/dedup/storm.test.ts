/**
 * Crash storms against a real nats-server (a JetStream KV bucket of its own)
 * and real cores: the same program crashing twice (two processes, two ASLR
 * layouts) is one address signature, so the second core gets a result that
 * references the first analysis without running gdb; a different crash is
 * analyzed fully. DEDUP_AFTER is checked with an in-memory bucket.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { analyzeDump } from "../../../lib/analyze.js";
import { createDeduplicator, deduplicatedResult, openDedupStore, shouldReference, type DedupStore, type PriorAnalysis } from "../../../lib/dedup/store.js";
import { ResultSchema } from "../../../lib/result.js";
import { crashProgram, type Crash } from "../../helpers/crashProgram.js";
import { startNatsServer, type DevNatsServer } from "../../helpers/natsServer.js";

const STORM = `#include <stdio.h>
#include <stdlib.h>
struct order { int *items; };
static int total(struct order *o) { return o->items[0]; }
int main(int argc, char **argv) {
  struct order *o = argc > 5 ? malloc(sizeof *o) : NULL;
  printf("%d\\n", total(o));
  return 0;
}
`;
const OTHER = `#include <assert.h>
#include <stdio.h>
static void check(int balance) { assert(balance >= 0); }
int main(void) { check(-1); puts("unreachable"); return 0; }
`;

let dir: string;
let nats: DevNatsServer;
let nc: NatsConnection;
let first: Crash;
let second: Crash;
let other: Crash;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-storm-"));
  first = await crashProgram({ dir: path.join(dir, "a"), source: STORM, name: "storm" });
  // The same program crashing again (the same build: gcc's output is deterministic), in a new process.
  await fs.rename(first.core, path.join(dir, "a", "core.1"));
  first = { exe: first.exe, core: path.join(dir, "a", "core.1") };
  second = await crashProgram({ dir: path.join(dir, "a"), source: STORM, name: "storm" });
  other = await crashProgram({ dir: path.join(dir, "c"), source: OTHER, name: "other" });
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
}, 60_000);

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
  await fs.rm(dir, { recursive: true, force: true });
});

describe("crash storm deduplication (JetStream KV)", () => {
  test("two identical crashes: the second is deduplicated and marked; a distinct crash runs gdb", async () => {
    const bucket = await openDedupStore(nc, { bucket: `storm_${process.pid}_${Date.now()}`, ttlMs: 60_000 });
    const dedup = createDeduplicator(bucket, { after: 1 });

    const a = await analyzeDump({ core: first.core, exe: first.exe, dedup: dedup.forJob("analysis-a") });
    expect(a.status).toBe("completed");
    expect(a.gdb).not.toBeNull();
    expect(a.deduplicated_from).toBeUndefined();
    expect(a.address_signature).toMatch(/^[0-9a-f]{32}$/);

    const b = await analyzeDump({ core: second.core, exe: second.exe, dedup: dedup.forJob("analysis-b") });
    expect(b.status).toBe("completed");
    expect(b.deduplicated_from).toBe("analysis-a");
    expect(b.address_signature).toBe(a.address_signature);
    expect(b.gdb).toBeNull();
    expect(b.threads).toEqual([]);
    expect(b.signal).toEqual(a.signal);
    expect(b.crash_frame).toEqual(a.crash_frame);
    expect(b.signature).toEqual(a.signature);
    expect(b.core?.size).toBe((await fs.stat(second.core)).size);
    expect(b.warnings?.join(" ")).toMatch(/deduplicated/);
    expect(() => ResultSchema.parse(b)).not.toThrow();

    const c = await analyzeDump({ core: other.core, exe: other.exe, dedup: dedup.forJob("analysis-c") });
    expect(c.status).toBe("completed");
    expect(c.deduplicated_from).toBeUndefined();
    expect(c.gdb).not.toBeNull();
    expect(c.address_signature).not.toBe(a.address_signature);
    expect(c.signature?.hash).not.toBe(a.signature?.hash);
  }, 60_000);

  test("DEDUP_AFTER=2: the first two of a signature are analyzed fully, the third references the first", async () => {
    const map = new Map<string, PriorAnalysis>();
    const store: DedupStore = { get: async (k) => map.get(k) ?? null, put: async (k, v) => void map.set(k, v) };
    const dedup = createDeduplicator(store, { after: 2 });
    const one = await analyzeDump({ core: first.core, exe: first.exe, dedup: dedup.forJob("one") });
    const two = await analyzeDump({ core: second.core, exe: second.exe, dedup: dedup.forJob("two") });
    const three = await analyzeDump({ core: first.core, exe: first.exe, dedup: dedup.forJob("three") });
    expect([one.gdb !== null, two.gdb !== null, three.gdb !== null]).toEqual([true, true, false]);
    expect(three.deduplicated_from).toBe("one");
    expect([...map.values()][0]?.analyses).toBe(2);
  }, 60_000);

  test("a bucket that fails is a full analysis, reported", async () => {
    const errors: string[] = [];
    const broken: DedupStore = {
      get: async () => {
        throw new Error("no responders");
      },
      put: async () => {
        throw new Error("no responders");
      },
    };
    const dedup = createDeduplicator(broken, { after: 1, onError: (what) => errors.push(what) });
    const r = await analyzeDump({ core: first.core, exe: first.exe, dedup: dedup.forJob("x") });
    expect(r.gdb).not.toBeNull();
    expect(errors).toEqual(["lookup", "record"]);
  }, 60_000);
});

describe("the policy and the result (pure)", () => {
  const prior: PriorAnalysis = {
    analysis_id: "a1",
    analyses: 1,
    signal: null,
    crash_thread: 1,
    crash_frame: null,
    signature: { text: "f", hash: "h", frames: ["f"] },
    quality: 0.5,
    abort_message: null,
  };
  test.each([
    [null, 1, false],
    [0, 1, false],
    [1, 1, true],
    [1, 2, false],
    [3, 2, true],
  ] as const)("analyses=%p, DEDUP_AFTER=%p → reference: %p", (analyses, after, want) => {
    expect(shouldReference(analyses === null ? null : { ...prior, analyses }, after)).toBe(want);
  });
  test("a deduplicated result is a valid v1 result", () => {
    const r = deduplicatedResult(
      prior,
      { key: "k".repeat(32), text: "t" },
      { size: 1, executable: "/app", command_line: "/app", architecture: "x86_64", compression: null, truncated: false },
    );
    expect(ResultSchema.parse(r)).toMatchObject({ status: "completed", deduplicated_from: "a1", gdb: null });
  });
});
