import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { execa } from "execa";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "@jest/globals";
import type { S3Client } from "@aws-sdk/client-s3";
import { CoreSightError, PermanentError, TransientError } from "../../../lib/errors.js";
import { downloadDump, type DownloadOptions } from "../../../lib/storage/download.js";
import { makeS3Client } from "../../../lib/storage/s3.js";
import { parseDumpUrl, type DumpLocation } from "../../../lib/storage/url.js";
import { startS3Server, type S3TestServer } from "../../helpers/s3Server.js";

const LOOPBACK = ["127.0.0.1", "localhost"];
const MiB = 1024 * 1024;
const md5 = (b: Buffer) => createHash("md5").update(b).digest("hex");

let s3: S3TestServer;
let creds: S3Client;
let tmp: string;
let httpServer: http.Server;
let httpBase: string;
const bucket = `dumps-${process.pid}`;

// A raw "core": random bytes, not compressed.
const raw = randomBytes(3 * MiB + 17);
const gz = zlib.gzipSync(raw);
let zst: Buffer;
// 32 MiB of zeros gzip to ~32 KiB: a zip bomb for a 4 MiB limit.
const bomb = zlib.gzipSync(Buffer.alloc(32 * MiB));

/** Test routes for what s3rver cannot do: error statuses, lies, resets, stalls, redirects. */
function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? "/", "http://x");
  const p = url.pathname;
  if (p === "/raw") {
    res.writeHead(200, { "content-length": raw.length });
    res.end(raw);
  } else if (p === "/no-length") {
    // chunked: no Content-Length to check up front
    res.writeHead(200);
    let sent = 0;
    const push = () => {
      while (sent < raw.length) {
        const chunk = raw.subarray(sent, sent + 256 * 1024);
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once("drain", push);
      }
      res.end();
    };
    push();
  } else if (p === "/huge-length") {
    res.writeHead(200, { "content-length": String(50 * 1024 * MiB) });
    res.write(raw.subarray(0, 1024));
    // never finishes: the client must give up on the header alone
  } else if (p === "/status") {
    const code = Number(url.searchParams.get("code"));
    const headers: Record<string, string> = { "content-type": "application/xml" };
    if (url.searchParams.get("retry")) headers["retry-after"] = url.searchParams.get("retry")!;
    res.writeHead(code, headers);
    res.end(`<?xml version="1.0"?><Error><Code>Code${code}</Code><Message>status ${code}</Message></Error>`);
  } else if (p === "/reset") {
    res.writeHead(200, { "content-length": raw.length });
    res.write(raw.subarray(0, MiB), () => setTimeout(() => res.socket?.destroy(), 20));
  } else if (p === "/reset-chunked") {
    res.writeHead(200);
    res.write(raw.subarray(0, MiB), () => setTimeout(() => res.socket?.destroy(), 20));
  } else if (p === "/stall") {
    res.writeHead(200, { "content-length": raw.length });
    res.write(raw.subarray(0, 64 * 1024));
  } else if (p === "/trickle") {
    res.writeHead(200);
    const timer = setInterval(() => res.write(raw.subarray(0, 64 * 1024)), 20);
    res.on("close", () => clearInterval(timer));
  } else if (p === "/redirect") {
    const n = Number(url.searchParams.get("n") ?? "1");
    res.writeHead(302, { location: n > 1 ? `/redirect?n=${n - 1}` : "/raw" });
    res.end();
  } else if (p === "/redirect-metadata") {
    res.writeHead(307, { location: "http://169.254.169.254/latest/meta-data/" });
    res.end();
  } else if (p === "/gzip") {
    res.writeHead(200, { "content-length": gz.length });
    res.end(gz);
  } else {
    res.writeHead(404);
    res.end();
  }
}

beforeAll(async () => {
  s3 = await startS3Server();
  await s3.createBucket(bucket);
  creds = (await makeS3Client({ endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, forcePathStyle: true }))!;
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "download-test-"));
  const rawFile = path.join(tmp, "core.raw");
  await fs.writeFile(rawFile, raw);
  zst = execFileSync("zstd", ["-q", "-c", rawFile], { maxBuffer: 64 * MiB });
  await s3.putFile(bucket, "coredumps/core.app.1", rawFile);
  await s3.putBuffer(bucket, "coredumps/core.app.1.gz", gz);
  await s3.putBuffer(bucket, "coredumps/core.app.1.zst", zst);
  await s3.putBuffer(bucket, "coredumps/bomb", bomb);
  await s3.putBuffer(bucket, "coredumps/with space+plus/核心 1", raw.subarray(0, 1000));
  httpServer = http.createServer(handler);
  await new Promise<void>((r) => httpServer.listen(0, "127.0.0.1", r));
  httpBase = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
});

afterAll(async () => {
  creds?.destroy();
  if (httpServer) {
    httpServer.closeAllConnections();
    await new Promise((r) => httpServer.close(r));
  }
  await s3?.stop();
  await fs.rm(tmp, { recursive: true, force: true });
});

let dir: string;
beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(tmp, "job-"));
});
afterEach(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

function opts(location: DumpLocation, extra: Partial<DownloadOptions> = {}): DownloadOptions {
  return { location, dir, maxBytes: 64 * MiB, allowedHosts: LOOPBACK, allowedFileRoots: [], ...extra };
}

async function failure(p: Promise<unknown>): Promise<CoreSightError> {
  try {
    await p;
  } catch (e: unknown) {
    if (e instanceof CoreSightError) return e;
    throw e;
  }
  throw new Error("expected the download to fail");
}

async function expectNoFiles(): Promise<void> {
  expect(await fs.readdir(dir)).toEqual([]);
}

describe("downloadDump from S3", () => {
  it("downloads through a presigned URL, byte for byte", async () => {
    const url = await s3.presign(bucket, "coredumps/core.app.1", 600);
    const progress: number[] = [];
    const d = await downloadDump(opts(parseDumpUrl(url), { fileName: "core", md5: md5(raw), onProgress: (b) => progress.push(b) }));
    expect(d).toEqual(
      expect.objectContaining({
        path: path.join(dir, "core"),
        bytes: raw.length,
        transferredBytes: raw.length,
        compression: null,
        md5: md5(raw),
        via: "presigned_url",
        owned: true,
      }),
    );
    expect((await fs.readFile(d.path)).equals(raw)).toBe(true);
    expect(progress.length).toBeGreaterThan(0);
    expect(progress[0]).toBeGreaterThan(0);
    expect(await fs.readdir(dir)).toEqual(["core"]);
  });

  it("downloads with GetObject when credentials are configured (s3://)", async () => {
    const d = await downloadDump(opts(parseDumpUrl(`s3://${bucket}/coredumps/core.app.1`), { s3: creds }));
    expect(d.via).toBe("s3_get_object");
    expect((await fs.readFile(d.path)).equals(raw)).toBe(true);
  });

  it("decodes keys with spaces, plus signs and unicode", async () => {
    const url = await s3.presign(bucket, "coredumps/with space+plus/核心 1", 600);
    const loc = parseDumpUrl(url);
    expect(loc).toEqual(expect.objectContaining({ kind: "s3", bucket, key: "coredumps/with space+plus/核心 1" }));
    const viaUrl = await downloadDump(opts(loc, { fileName: "a" }));
    const viaS3 = await downloadDump(opts(parseDumpUrl(`s3://${bucket}/coredumps/with%20space+plus/%E6%A0%B8%E5%BF%83%201`), { s3: creds, fileName: "b" }));
    expect(viaUrl.bytes).toBe(1000);
    expect(viaS3.bytes).toBe(1000);
  });

  it("falls back to GetObject when the presigned URL has expired", async () => {
    const url = await s3.presign(bucket, "coredumps/core.app.1", 1);
    await new Promise((r) => setTimeout(r, 2100));
    const d = await downloadDump(opts(parseDumpUrl(url), { s3: creds }));
    expect(d.via).toBe("s3_get_object");
    expect((await fs.readFile(d.path)).equals(raw)).toBe(true);
    await fs.rm(d.path);

    // Without credentials the store's 403 is final and says why.
    const err = await failure(downloadDump(opts(parseDumpUrl(url))));
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.code).toBe("dump_forbidden");
    expect(err.message).toMatch(/Request has expired/);
    expect(err.message).toMatch(/AWS_ACCESS_KEY_ID/);
    expect(err.message).not.toMatch(/X-Amz-Signature=[0-9a-f]/);
    await expectNoFiles();
  });

  it("falls back to GetObject on a 403 even when the local clock thinks the URL is valid", async () => {
    const url = await s3.presign(bucket, "coredumps/core.app.1", 1);
    await new Promise((r) => setTimeout(r, 2100));
    // A clock behind the store's: the URL looks valid here, the store says 403.
    const d = await downloadDump(opts(parseDumpUrl(url), { s3: creds, now: () => Date.now() - 3_600_000 }));
    expect(d.via).toBe("s3_get_object");
    expect(d.bytes).toBe(raw.length);
  });

  it("does not use credentials of another store", async () => {
    const other = (await makeS3Client({ endpoint: "http://127.0.0.1:1", region: "us-east-1", accessKeyId: "a", secretAccessKey: "b", forcePathStyle: true }))!;
    try {
      const url = await s3.presign(bucket, "coredumps/core.app.1", 600);
      const d = await downloadDump(opts(parseDumpUrl(url), { s3: other }));
      expect(d.via).toBe("presigned_url");
    } finally {
      other.destroy();
    }
  });

  it("reports a missing object as dump_not_found, by URL and by GetObject", async () => {
    const url = await s3.presign(bucket, "coredumps/nope", 600);
    expect((await failure(downloadDump(opts(parseDumpUrl(url))))).code).toBe("dump_not_found");
    expect((await failure(downloadDump(opts(parseDumpUrl(`s3://${bucket}/coredumps/nope`), { s3: creds })))).code).toBe("dump_not_found");
    expect((await failure(downloadDump(opts(parseDumpUrl(`s3://no-such-bucket-${process.pid}/k`), { s3: creds })))).code).toBe("dump_not_found");
    await expectNoFiles();
  });

  it("refuses s3:// without credentials", async () => {
    const err = await failure(downloadDump(opts(parseDumpUrl(`s3://${bucket}/coredumps/core.app.1`))));
    expect(err.code).toBe("dump_forbidden");
    expect(err.message).toMatch(/AWS_ACCESS_KEY_ID/);
  });

  it.each([
    ["gzip", "coredumps/core.app.1.gz", () => gz],
    ["zstd", "coredumps/core.app.1.zst", () => zst],
  ] as const)("detects %s by its magic and decompresses while streaming", async (kind, key, packed) => {
    const url = await s3.presign(bucket, key, 600);
    for (const [loc, s3client] of [
      [parseDumpUrl(url), null],
      [parseDumpUrl(`s3://${bucket}/${key}`), creds],
    ] as const) {
      const d = await downloadDump(opts(loc, { s3: s3client, md5: md5(packed()) }));
      expect(d.compression).toBe(kind);
      expect(d.transferredBytes).toBe(packed().length);
      expect(d.bytes).toBe(raw.length);
      expect(d.md5).toBe(md5(packed()));
      expect((await fs.readFile(d.path)).equals(raw)).toBe(true);
      await fs.rm(d.path);
    }
  });

  it.each([
    ["gzip", Buffer.from([0x1f, 0x8b, 0x08, 0x00, 1, 2, 3, 4, 5, 6, 7, 8, 9])],
    ["zstd", Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4, 5, 6, 7, 8, 9])],
  ] as const)("a corrupt %s stream is not_a_core, with no partial file left", async (kind, bytes) => {
    const key = `coredumps/corrupt.${kind}`;
    await s3.putBuffer(bucket, key, bytes);
    const err = await failure(downloadDump(opts(parseDumpUrl(`s3://${bucket}/${key}`), { s3: creds })));
    expect(err.code).toBe("not_a_core");
    expect(err.message).toMatch(/compressed dump .* is corrupt/);
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it("stops a zip bomb at MAX on the decompressed side", async () => {
    const err = await failure(downloadDump(opts(parseDumpUrl(`s3://${bucket}/coredumps/bomb`), { s3: creds, maxBytes: 4 * MiB })));
    expect(err.code).toBe("too_large");
    expect(err.message).toMatch(/decompressed/);
    await expectNoFiles();
  });

  it("refuses an object larger than MAX by its ContentLength", async () => {
    const url = await s3.presign(bucket, "coredumps/core.app.1", 600);
    expect((await failure(downloadDump(opts(parseDumpUrl(url), { maxBytes: MiB })))).code).toBe("too_large");
    expect((await failure(downloadDump(opts(parseDumpUrl(`s3://${bucket}/coredumps/core.app.1`), { s3: creds, maxBytes: MiB })))).code).toBe("too_large");
    await expectNoFiles();
  });
});

describe("downloadDump over plain HTTP", () => {
  const at = (p: string) => parseDumpUrl(`${httpBase}${p}`);

  it("refuses loopback unless listed in ALLOWED_DUMP_HOSTS", async () => {
    const err = await failure(downloadDump(opts(at("/raw"), { allowedHosts: [] })));
    expect(err.code).toBe("host_not_allowed");
    expect(err.message).toMatch(/ALLOWED_DUMP_HOSTS/);
    const ok = await downloadDump(opts(at("/raw")));
    expect(ok.via).toBe("http");
  });

  it("verifies the md5 (any case) and deletes the file on a mismatch", async () => {
    const ok = await downloadDump(opts(at("/raw"), { md5: md5(raw).toUpperCase() }));
    expect(ok.md5).toBe(md5(raw));
    // No md5 to check: none is computed (hashing was the largest CPU cost).
    const unchecked = await downloadDump(opts(at("/raw"), { fileName: "core-unchecked" }));
    expect(unchecked.md5).toBe("");
    expect(await fs.readFile(unchecked.path)).toEqual(raw);
    await fs.rm(unchecked.path);
    await fs.rm(ok.path);
    const err = await failure(downloadDump(opts(at("/raw"), { md5: "0".repeat(32) })));
    expect(err.code).toBe("md5_mismatch");
    expect(err).toBeInstanceOf(PermanentError);
    await expectNoFiles();
  });

  it("maps statuses: 404 → dump_not_found, 403 → dump_forbidden, 503/429 → transient with Retry-After", async () => {
    expect((await failure(downloadDump(opts(at("/status?code=404"))))).code).toBe("dump_not_found");
    expect((await failure(downloadDump(opts(at("/status?code=403"))))).code).toBe("dump_forbidden");
    const e503 = await failure(downloadDump(opts(at("/status?code=503&retry=7"))));
    expect(e503).toBeInstanceOf(TransientError);
    expect(e503.code).toBe("download_failed");
    expect((e503 as TransientError).retryAfterMs).toBe(7000);
    expect(e503.message).toMatch(/Code503: status 503/);
    const e429 = await failure(downloadDump(opts(at("/status?code=429"))));
    expect(e429).toBeInstanceOf(TransientError);
    expect((e429 as TransientError).retryAfterMs).toBeUndefined();
    expect(await failure(downloadDump(opts(at("/status?code=400"))))).toBeInstanceOf(PermanentError);
    await expectNoFiles();
  });

  it("refuses by Content-Length, by expected size, and while streaming when the length is missing", async () => {
    expect((await failure(downloadDump(opts(at("/huge-length"))))).code).toBe("too_large");
    expect((await failure(downloadDump(opts(at("/raw"), { expectedSize: 100 * MiB })))).code).toBe("too_large");
    const err = await failure(downloadDump(opts(at("/no-length"), { maxBytes: MiB })));
    expect(err.code).toBe("too_large");
    await expectNoFiles();
  });

  it.each(["/reset", "/reset-chunked"])("a connection reset mid-stream (%s) is transient and leaves no file", async (p) => {
    const err = await failure(downloadDump(opts(at(p))));
    expect(err).toBeInstanceOf(TransientError);
    expect(err.code).toBe("download_failed");
    await expectNoFiles();
  });

  it("a refused connection is transient", async () => {
    const srv = http.createServer();
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as AddressInfo).port;
    await new Promise((r) => srv.close(r));
    const err = await failure(downloadDump(opts(parseDumpUrl(`http://127.0.0.1:${port}/core`))));
    expect(err).toBeInstanceOf(TransientError);
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it("gives up on a stalled transfer", async () => {
    const err = await failure(downloadDump(opts(at("/stall"), { idleTimeoutMs: 300 })));
    expect(err).toBeInstanceOf(TransientError);
    expect(err.message).toMatch(/stalled/);
    await expectNoFiles();
  });

  it("stops when the signal aborts and removes the partial file", async () => {
    const ac = new AbortController();
    let seen = 0;
    const err = await failure(
      downloadDump(
        opts(at("/trickle"), {
          signal: ac.signal,
          onProgress: (b) => {
            seen = b;
            ac.abort(new Error("shutdown"));
          },
        }),
      ),
    );
    expect(seen).toBeGreaterThan(0);
    expect(err).toBeInstanceOf(TransientError);
    expect(err.message).toMatch(/aborted/);
    await expectNoFiles();
    // An already aborted signal never starts.
    expect((await failure(downloadDump(opts(at("/raw"), { signal: AbortSignal.abort() })))).message).toMatch(/aborted/);
  });

  it("follows redirects, checking every hop, at most 5", async () => {
    const d = await downloadDump(opts(at("/redirect?n=3")));
    expect(d.bytes).toBe(raw.length);
    await fs.rm(d.path);
    const meta = await failure(downloadDump(opts(at("/redirect-metadata"))));
    expect(meta.code).toBe("host_not_allowed");
    expect(meta.message).toMatch(/169\.254\.169\.254/);
    const loop = await failure(downloadDump(opts(at("/redirect?n=9"))));
    expect(loop.code).toBe("download_failed");
    expect(loop.message).toMatch(/redirects/);
    await expectNoFiles();
  });

  it("gunzips a gzip body found by magic", async () => {
    const d = await downloadDump(opts(at("/gzip")));
    expect(d.compression).toBe("gzip");
    expect((await fs.readFile(d.path)).equals(raw)).toBe(true);
  });
});

describe("downloadDump from files (cfs://, file://)", () => {
  let root: string;
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(tmp, "cfs-"));
    await fs.writeFile(path.join(root, "core.raw"), raw);
    await fs.writeFile(path.join(root, "core.gz"), gz);
  });

  it("reads an uncompressed file in place, through the handle it checked, and does not own it", async () => {
    const d = await downloadDump(opts(parseDumpUrl(`cfs://${root}/core.raw`), { allowedFileRoots: [root], md5: md5(raw) }));
    expect(d).toEqual(expect.objectContaining({ path: `/proc/${process.pid}/fd/${/\d+$/.exec(d.path)?.[0]}`, owned: false, via: "file", bytes: raw.length, md5: md5(raw) }));
    expect(await fs.readlink(d.path)).toBe(path.join(await fs.realpath(root), "core.raw"));
    await d.release?.();
    await expectNoFiles();
    const bad = await failure(downloadDump(opts(parseDumpUrl(`file://${root}/core.raw`), { allowedFileRoots: [root], md5: "f".repeat(32) })));
    expect(bad.code).toBe("md5_mismatch");
    // the caller's file is never deleted
    expect((await fs.stat(path.join(root, "core.raw"))).size).toBe(raw.length);
  });

  it("decompresses a compressed file into the job directory", async () => {
    const d = await downloadDump(opts(parseDumpUrl(`file://${root}/core.gz`), { allowedFileRoots: [root] }));
    expect(d).toEqual(expect.objectContaining({ owned: true, compression: "gzip", bytes: raw.length, path: path.join(dir, "core") }));
    expect((await fs.readFile(d.path)).equals(raw)).toBe(true);
  });

  it("check-then-use: swapping the name for a symlink out of the roots after the check changes nothing that is read", async () => {
    const secret = path.join(tmp, "secret-outside-roots");
    await fs.writeFile(secret, "not yours");
    const name = path.join(root, "core.swapped");
    await fs.writeFile(name, raw);
    const d = await downloadDump(opts(parseDumpUrl(`cfs://${name}`), { allowedFileRoots: [root] }));
    try {
      // The name now points outside ALLOWED_FILE_ROOTS; every later reader (inspect, eu-unstrip, gdb) opens d.path.
      await fs.rm(name);
      await fs.symlink(secret, name);
      expect((await fs.readFile(d.path)).equals(raw)).toBe(true);
    } finally {
      await d.release?.();
    }
  });

  it("a FIFO inside the roots is refused without waiting for a writer; a symlink loop is invalid_input", async () => {
    const fifo = path.join(root, "core.fifo");
    await execa("mkfifo", [fifo]);
    expect((await failure(downloadDump(opts(parseDumpUrl(`cfs://${fifo}`), { allowedFileRoots: [root] })))).code).toBe("dump_not_found");
    await fs.symlink(path.join(root, "loop-b"), path.join(root, "loop-a"));
    await fs.symlink(path.join(root, "loop-a"), path.join(root, "loop-b"));
    expect((await failure(downloadDump(opts(parseDumpUrl(`cfs://${root}/loop-a`), { allowedFileRoots: [root] })))).code).toBe("invalid_input");
  });

  it("refuses files outside ALLOWED_FILE_ROOTS, too large or missing", async () => {
    expect((await failure(downloadDump(opts(parseDumpUrl(`cfs://${root}/core.raw`), { allowedFileRoots: [dir] })))).code).toBe("host_not_allowed");
    expect((await failure(downloadDump(opts(parseDumpUrl(`cfs://${root}/core.raw`))))).code).toBe("host_not_allowed");
    expect((await failure(downloadDump(opts(parseDumpUrl(`cfs://${root}/core.raw`), { allowedFileRoots: [root], maxBytes: MiB })))).code).toBe("too_large");
    expect((await failure(downloadDump(opts(parseDumpUrl(`cfs://${root}/core.none`), { allowedFileRoots: [root] })))).code).toBe("dump_not_found");
  });
});

describe("s3Server helper", () => {
  it("stores a streamed upload byte for byte", async () => {
    const file = path.join(tmp, "core.raw");
    await s3.putFile(bucket, "roundtrip", file);
    const url = await s3.presign(bucket, "roundtrip", 60);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(raw)).toBe(true);
  });
});
