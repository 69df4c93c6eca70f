/**
 * fetchToFile against a real loopback server: the bytes on disk are the
 * body's (across many writes, synchronous while they are quick, batched
 * after a slow one), the cap holds on the bytes as they come
 * and on a Content-Length, a redirect hop is checked against the host policy,
 * and a non-200 answer writes nothing.
 */
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { getEventListeners } from "node:events";
import { Readable } from "node:stream";
import { fetchToFile, writeToFile } from "../../../lib/storage/fetchToFile.js";
import { recycle } from "../../../lib/storage/plainGet.js";
import { debuginfodFetch } from "../../../lib/symbols/debuginfod.js";

const BODY = randomBytes(20 * 1024 * 1024 + 123);
let server: http.Server;
let base: string;
let dir: string;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-fetchToFile-"));
  server = http.createServer((req, res) => {
    if (req.url === "/body") {
      res.writeHead(200, { "content-length": BODY.length });
      // Many small writes: the file must still be the body, in order.
      for (let off = 0; off < BODY.length; off += 100_000) res.write(BODY.subarray(off, off + 100_000));
      res.end();
    } else if (req.url === "/chunked" || req.url?.startsWith("/buildid/")) {
      // Two writes before the end: chunked, no Content-Length to refuse up front.
      res.writeHead(200);
      res.write(BODY.subarray(0, 1_000_000));
      res.end(BODY.subarray(1_000_000));
    } else if (req.url === "/to-body") res.writeHead(302, { location: "/body" }).end();
    else if (req.url === "/to-metadata") res.writeHead(302, { location: "http://169.254.169.254/latest/meta-data/" }).end();
    else res.writeHead(404).end("no such thing");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await fs.rm(dir, { recursive: true, force: true });
});

const tooLarge = (n: number) => new Error(`too large: ${n}`);
const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");

describe("fetchToFile", () => {
  test("writes the body, hashed in the same pass, following a redirect the policy allows", async () => {
    const file = path.join(dir, "a");
    const r = await fetchToFile(new URL(`${base}/to-body`), file, { maxBytes: BODY.length, tooLarge, md5: true, allowedHosts: ["127.0.0.1"] });
    expect(r).toMatchObject({ status: 200, bytes: BODY.length, md5: md5(BODY) });
    expect(md5(await fs.readFile(file))).toBe(md5(BODY));
  });

  test("refuses a Content-Length above the cap before reading, and removes nothing it did not write", async () => {
    const file = path.join(dir, "b");
    await expect(fetchToFile(new URL(`${base}/body`), file, { maxBytes: 1000, tooLarge })).rejects.toThrow(`too large: ${BODY.length}`);
    await expect(fs.stat(file)).rejects.toThrow(/ENOENT/);
  });

  test("stops a body without Content-Length at the cap and removes the partial file", async () => {
    const file = path.join(dir, "c");
    await expect(fetchToFile(new URL(`${base}/chunked`), file, { maxBytes: 5 * 1024 * 1024, tooLarge })).rejects.toThrow(/too large/);
    await expect(fs.stat(file)).rejects.toThrow(/ENOENT/);
  });

  test("checks every redirect hop against the host policy", async () => {
    await expect(fetchToFile(new URL(`${base}/to-metadata`), path.join(dir, "d"), { maxBytes: 1e9, tooLarge, allowedHosts: ["127.0.0.1"] })).rejects.toMatchObject({
      code: "host_not_allowed",
    });
  });

  test("a non-200 answer writes nothing and returns its status and text", async () => {
    const file = path.join(dir, "e");
    const r = await fetchToFile(new URL(`${base}/missing`), file, { maxBytes: 1e9, tooLarge });
    expect(r).toMatchObject({ status: 404, text: "no such thing" });
    await expect(fs.stat(file)).rejects.toThrow(/ENOENT/);
  });
});

describe("writeToFile", () => {
  test("a file that cannot be created: the error as it was, the body destroyed, the signal let go of", async () => {
    const src = Readable.from([Buffer.from("x")]);
    const ac = new AbortController();
    const file = path.join(dir, "no-such-dir", "out");
    await expect(writeToFile(src, file, { maxBytes: 10, tooLarge, signal: ac.signal })).rejects.toMatchObject({ code: "ENOENT" });
    expect(src.destroyed).toBe(true);
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
  });

  /** 300 chunks of 1 byte to 64 KiB, as a recyclable body: `returned` is each batch of buffers handed back once written. */
  function body(): { src: Readable; bytes: Buffer; returned: Buffer[][] } {
    const chunks = Array.from({ length: 300 }, (_, i) => randomBytes(1 + ((i * 7919) % 65536)));
    const returned: Buffer[][] = [];
    const src = Object.assign(Readable.from(chunks), { [recycle]: (views: Buffer[]) => void returned.push(views) });
    return { src, bytes: Buffer.concat(chunks), returned };
  }

  test("writes each chunk at once while writes are quick: the file is the body, every chunk handed back alone", async () => {
    const { src, bytes, returned } = body();
    const file = path.join(dir, "sync-out");
    const r = await writeToFile(src, file, { maxBytes: bytes.length, tooLarge, md5: true, slowWriteMs: Infinity });
    expect(r).toEqual({ bytes: bytes.length, md5: md5(bytes) });
    expect((await fs.readFile(file)).equals(bytes)).toBe(true);
    expect(returned).toHaveLength(300);
    expect(returned.every((v) => v.length === 1)).toBe(true);
  });

  test("a long run of chunks lets the event loop turn: timers fire while 100 ms of per-chunk work goes on", async () => {
    const chunks = Array.from({ length: 50 }, () => randomBytes(4096));
    const src = Readable.from(chunks);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const busy = () => {
      const end = performance.now() + 2;
      while (performance.now() < end);
    };
    try {
      // Readable.from hands chunks on in microtasks: without a pause of the body, no timer could run until the end.
      await writeToFile(src, path.join(dir, "slices-out"), { maxBytes: 1 << 20, tooLarge, onBytes: busy });
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThanOrEqual(4);
    expect((await fs.readFile(path.join(dir, "slices-out"))).equals(Buffer.concat(chunks))).toBe(true);
  });

  test("after a slow write the rest goes in batches, asynchronously: the file is still the body, in order", async () => {
    const { src, bytes, returned } = body();
    const file = path.join(dir, "switch-out");
    // Every write is slower than -1 ms: the first chunk is written at once, the others batched.
    const r = await writeToFile(src, file, { maxBytes: bytes.length, tooLarge, md5: true, slowWriteMs: -1 });
    expect(r).toEqual({ bytes: bytes.length, md5: md5(bytes) });
    expect((await fs.readFile(file)).equals(bytes)).toBe(true);
    expect(returned[0]).toHaveLength(1);
    expect(returned.length).toBeLessThan(300);
    expect(returned.slice(1).some((v) => v.length > 1)).toBe(true);
    expect(returned.flat().reduce((n, b) => n + b.length, 0)).toBe(bytes.length);
  });
});

describe("debuginfodFetch goes through fetchToFile", () => {
  test("a file larger than the cache is that server's error, and nothing stays on disk", async () => {
    const dest = path.join(dir, "debuginfo");
    const r = await debuginfodFetch([base], "abcdef0123456789", "debuginfo", dest, { maxBytes: 1024 * 1024 });
    expect(r.url).toBeNull();
    expect(r.errors.join("\n")).toMatch(/SYMBOL_CACHE_MAX_BYTES/);
    await expect(fs.stat(dest)).rejects.toThrow(/ENOENT/);
  });

  test("within the cap the file is the body", async () => {
    const dest = path.join(dir, "debuginfo-ok");
    const r = await debuginfodFetch([base], "abcdef0123456789", "debuginfo", dest, { maxBytes: BODY.length });
    expect(r.url).toBe(base);
    expect(md5(await fs.readFile(dest))).toBe(md5(BODY));
  });
});
