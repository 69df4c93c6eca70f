/**
 * A body that drips (one byte at a time, never idle long enough for the idle
 * watchdog that heartbeats keep feeding) must not hold a job for days: the
 * whole download has a deadline and a minimum rate (issue 9). A real local
 * HTTP server drips; the test sets small limits and asserts the typed failure.
 */
import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { downloadDump, type DownloadOptions } from "../../lib/storage/download.js";

let tmp: string;
let server: http.Server;
let url: string;
const open = new Set<http.ServerResponse>();
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "hostile-drip-"));
  server = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/octet-stream" });
    open.add(res);
    // 20 bytes a second, forever: never idle for the watchdog.
    const t = setInterval(() => res.write("\x7f"), 50);
    res.on("close", () => {
      clearInterval(t);
      open.delete(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/core`;
});
afterAll(async () => {
  for (const res of open) res.destroy();
  await new Promise((r) => server.close(r));
  await fs.rm(tmp, { recursive: true, force: true });
});

async function drip(extra: Partial<DownloadOptions>): Promise<{ error: unknown; dir: string }> {
  const dir = await fs.mkdtemp(path.join(tmp, "job-"));
  const error = await downloadDump({
    location: { kind: "http", url },
    dir,
    maxBytes: 1 << 30,
    allowedHosts: ["127.0.0.1"],
    allowedFileRoots: [],
    idleTimeoutMs: 60_000,
    ...extra,
  }).then(
    () => null,
    (e: unknown) => e,
  );
  return { error, dir };
}

describe("a dripping body cannot keep a job alive", () => {
  test("the whole download has a deadline (DOWNLOAD_TIMEOUT_MS); heartbeats do not extend it", async () => {
    const { error, dir } = await drip({ deadlineMs: 1000 });
    expect(error).toMatchObject({ code: "download_failed", permanent: false });
    expect((error as Error).message).toMatch(/DOWNLOAD_TIMEOUT_MS/);
    expect(await fs.readdir(dir)).toEqual([]);
  }, 30_000);

  test("a minimum rate over a window (DOWNLOAD_MIN_BYTES_PER_S) stops a body that is never idle", async () => {
    const { error, dir } = await drip({ minBytesPerSecond: 1000, rateWindowMs: 500 });
    expect(error).toMatchObject({ code: "download_failed", permanent: false });
    expect((error as Error).message).toMatch(/DOWNLOAD_MIN_BYTES_PER_S \(1000\)/);
    expect(await fs.readdir(dir)).toEqual([]);
  }, 30_000);
});
