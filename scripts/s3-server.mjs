#!/usr/bin/env node
/**
 * A local S3 (s3rver) in its own process, for tests, the bench and the demo.
 *
 *   node scripts/s3-server.mjs [--dir DIR] [--port 0] [--address 127.0.0.1] [--bucket NAME]... [--exit-with-stdin]
 *
 * Prints one JSON line on stdout once listening: {"port", "address", "endpoint", "dir", "pid"}.
 * Port 0 picks a free port. It runs in a separate process because s3rver on a
 * test's own event loop deadlocks against synchronous child processes, and so
 * that the worker's own memory and CPU can be measured without it.
 * With --exit-with-stdin it stops when its stdin closes, so it cannot outlive
 * a parent that dies without cleaning up. Credentials: S3RVER / S3RVER.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import S3rver from "s3rver";

const args = process.argv.slice(2);
const opt = { dir: "", port: 0, address: "127.0.0.1", buckets: [], exitWithStdin: false };
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  const value = () => {
    const v = args[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    return v;
  };
  if (a === "--dir") opt.dir = value();
  else if (a === "--port") opt.port = Number(value());
  else if (a === "--address") opt.address = value();
  else if (a === "--bucket") opt.buckets.push(value());
  else if (a === "--exit-with-stdin") opt.exitWithStdin = true;
  else {
    process.stderr.write(`s3-server: unknown argument ${a}\n`);
    process.exit(2);
  }
}
// A directory made here is removed on stop; one given with --dir belongs to the caller.
const ownDir = !opt.dir;
const dir = opt.dir || fs.mkdtempSync(path.join(os.tmpdir(), "s3rver-"));
fs.mkdirSync(dir, { recursive: true });

const server = new S3rver({
  port: opt.port,
  address: opt.address,
  directory: dir,
  silent: true,
  configureBuckets: opt.buckets.map((name) => ({ name })),
});
const { port, address } = await server.run();
const host = address.includes(":") ? `[${address}]` : address;
process.stdout.write(JSON.stringify({ port, address, endpoint: `http://${host}:${port}`, dir, pid: process.pid }) + "\n");

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  // Open keep-alive sockets would hold close() forever.
  server.httpServer?.closeAllConnections?.();
  await server.close().catch(() => undefined);
  if (ownDir) fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
if (opt.exitWithStdin) {
  process.stdin.on("end", stop);
  process.stdin.on("close", stop);
  process.stdin.resume();
}
