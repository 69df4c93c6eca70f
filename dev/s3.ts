/**
 * A real S3 (s3rver) for tests, in a child process on a free loopback port.
 *
 * A child process because s3rver on jest's event loop deadlocks against
 * synchronous child processes (ENV-NOTES), and so that what a test measures
 * of the worker is not mixed with the server. The child runs with
 * --exit-with-stdin: if the test process dies, the server goes with it.
 *
 * Uploads use PutObject with a known ContentLength (or a Buffer) on a client
 * with checksums "WHEN_REQUIRED": with the SDK defaults s3rver stores the
 * aws-chunked framing as content (ENV-NOTES, "S3").
 */
import { spawn, type ChildProcessByStdio } from "node:child_process";
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";

export interface S3TestServer {
  endpoint: string;
  port: number;
  /** Path-style client with s3rver's credentials (S3RVER/S3RVER) and safe checksum settings. */
  client: S3Client;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  createBucket(name: string): Promise<void>;
  putFile(bucket: string, key: string, file: string): Promise<void>;
  putBuffer(bucket: string, key: string, body: Buffer): Promise<void>;
  presign(bucket: string, key: string, expiresSec: number): Promise<string>;
  stop(): Promise<void>;
}

/** The repository root: the nearest directory up from here holding scripts/s3-server.mjs. */
export function repoRoot(from = path.dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (fs.existsSync(path.join(dir, "scripts", "s3-server.mjs"))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`scripts/s3-server.mjs not found above ${from}`);
    dir = up;
  }
}

const ACCESS_KEY = "S3RVER";
const SECRET_KEY = "S3RVER";
const REGION = "us-east-1";

/** Starts s3rver in a child process; `stop()` ends it and removes its directory. */
export async function startS3Server(opts: { dir?: string } = {}): Promise<S3TestServer> {
  const ownDir = !opts.dir;
  const dir = opts.dir ?? (await fsp.mkdtemp(path.join(os.tmpdir(), "s3rver-test-")));
  const script = path.join(repoRoot(), "scripts", "s3-server.mjs");
  const child: ChildProcessByStdio<Writable, Readable, Readable> = spawn(process.execPath, [script, "--dir", dir, "--port", "0", "--address", "127.0.0.1", "--exit-with-stdin"], {
    stdio: ["pipe", "pipe", "pipe"],
    env: process.env,
  });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d: string) => {
    if (stderr.length < 8192) stderr += d;
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));

  let info: { port: number; endpoint: string };
  try {
    info = await new Promise((resolve, reject) => {
      let out = "";
      child.stdout.setEncoding("utf8");
      const onData = (d: string) => {
        out += d;
        const nl = out.indexOf("\n");
        if (nl < 0) return;
        child.stdout.off("data", onData);
        try {
          resolve(JSON.parse(out.slice(0, nl)) as { port: number; endpoint: string });
        } catch (e: unknown) {
          reject(new Error(`s3-server printed ${JSON.stringify(out)}: ${(e as Error).message}`));
        }
      };
      child.stdout.on("data", onData);
      child.once("exit", (code) => reject(new Error(`s3-server exited with ${code} before listening: ${stderr}`)));
      child.once("error", reject);
    });
  } catch (e: unknown) {
    child.kill("SIGKILL");
    await exited;
    if (ownDir) await fsp.rm(dir, { recursive: true, force: true });
    throw e;
  }
  // Keep reading so a chatty child never blocks on a full pipe.
  child.stdout.resume();

  const client = new S3Client({
    region: REGION,
    endpoint: info.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });

  let stopped: Promise<void> | null = null;
  return {
    endpoint: info.endpoint,
    port: info.port,
    client,
    accessKeyId: ACCESS_KEY,
    secretAccessKey: SECRET_KEY,
    region: REGION,
    async createBucket(name) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    async putFile(bucket, key, file) {
      const { size } = await fsp.stat(file);
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: fs.createReadStream(file), ContentLength: size }));
    },
    async putBuffer(bucket, key, body) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: body.length }));
    },
    presign(bucket, key, expiresSec) {
      return getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: expiresSec });
    },
    stop() {
      stopped ??= (async () => {
        client.destroy();
        if (child.exitCode === null && child.signalCode === null) {
          child.kill("SIGTERM");
          const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
          await exited;
          clearTimeout(timer);
        }
        child.stdin.destroy();
        if (ownDir) await fsp.rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
