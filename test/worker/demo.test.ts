/**
 * `make demo` end to end, as a developer runs it: the built demo starts its
 * own nats-server, S3 server, the CoreSight API and two worker processes,
 * POSTs fixtures/events to the API as CoreDog does and must print a result
 * for every report and the crash groups.
 */
import { describe, expect, it } from "@jest/globals";
import { execa } from "execa";
import fs from "node:fs/promises";
import path from "node:path";
import { repoRoot } from "../helpers/workerProcess.js";

describe("make demo", () => {
  it("prints a result line for every replayed event and where worker.log is", async () => {
    const demo = path.join(repoRoot, "dist/dev/demo.js");
    await fs.access(demo).catch(() => {
      throw new Error(`${demo} missing: run \`make build\` (make test does) before jest`);
    });
    const r = await execa(process.execPath, [demo], { cwd: repoRoot, reject: false, timeout: 240_000, all: true });
    expect(r.exitCode).toBe(0);
    const out = r.stdout;
    const published = out.split("\n").filter((l) => / event \S+: 202 coredump_id \d+ analysis /.test(l) && l.startsWith("posted ")).length;
    expect(published).toBeGreaterThanOrEqual(12);
    expect(out).toContain(`${published} events, ${published} results in`);
    expect(out).toContain(`"Received coredump.uploaded" logged ${published} times`);
    expect(out).toMatch(/^core\.null-deref\.4001\S* +SIGSEGV SEGV_MAPERR +store_total null-deref\.c:20 /m);
    // The stripped binary is symbolized from the demo's S3 symbol store.
    expect(out).toMatch(/^core\.stripped\.4011\S* +SIGSEGV SEGV_MAPERR +store_total null-deref\.c:20 /m);
    expect(out).not.toMatch(/FAILED/);
    // The groups come from the API: the four null-deref cores (plain, gzip, zstd, stripped) are one group.
    expect(out).toContain("crash groups (GET ");
    expect(out).toMatch(/^[0-9a-f]{16} +ongoing +4 +/m);
    const log = await fs.readFile(path.join(repoRoot, "demo-output/worker.log"), "utf8");
    expect(log).not.toContain("kULT1AKXMu4xxnPNo5fSCW7J5LXx7llJgLh45PCuxOg"); // the agent token in the fixture events
  });
});
