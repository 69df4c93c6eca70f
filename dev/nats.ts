/**
 * A private nats-server with JetStream on a free loopback port, for tests and
 * `make demo` (never for production). Uses the Debian `nats-server` binary:
 * `-p -1` picks a free port, which the server writes to a ports file that we
 * poll (it can be read half-written, so parse errors mean "not yet").
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";

export interface DevNatsServer {
  url: string;
  dir: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * `port` fixes the port (default: a free one); with `dir` given the JetStream
 * state survives stop(), so a test can restart the same server (a NATS outage).
 */
export async function startNatsServer(opts: { binary?: string; dir?: string; port?: number } = {}): Promise<DevNatsServer> {
  const dir = opts.dir ?? (await fs.mkdtemp(path.join(os.tmpdir(), "coresight-nats-")));
  const ownsDir = opts.dir === undefined;
  const binary = opts.binary ?? "nats-server";
  const child = spawn(binary, ["-a", "127.0.0.1", "-p", String(opts.port ?? -1), "-js", "-sd", path.join(dir, "js"), "--ports_file_dir", dir], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (d: string) => {
    if (stderr.length < 8192) stderr += d;
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const spawnError = new Promise<never>((_, reject) => child.once("error", (e) => reject(new Error(`cannot start ${binary}: ${e.message} (Debian package nats-server)`))));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    }
    if (ownsDir) await fs.rm(dir, { recursive: true, force: true });
  };
  try {
    const url = await Promise.race([
      waitForPortsFile(
        dir,
        child.pid!,
        () => stderr,
        () => child.exitCode !== null,
      ),
      spawnError,
    ]);
    return { url, dir, process: child, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

async function waitForPortsFile(dir: string, pid: number, stderr: () => string, dead: () => boolean): Promise<string> {
  const file = path.join(dir, `nats-server_${pid}.ports`);
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (dead()) throw new Error(`nats-server exited at start-up: ${stderr().trim()}`);
    try {
      const ports = JSON.parse(await fs.readFile(file, "utf8")) as { nats?: string[] };
      const url = ports.nats?.[0];
      if (url) return url;
    } catch {
      // not written yet, or half-written
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`nats-server did not report its port within 15 s: ${stderr().trim()}`);
}
