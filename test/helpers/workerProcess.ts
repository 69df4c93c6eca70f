/**
 * Spawns real worker processes (`node dist/bundle/cli.js run`, the shipped
 * binary, built by `make test` before jest) and reads their JSON log lines.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { repoRoot } from "./fixtures.js";

export { repoRoot };
export const cliPath = path.join(repoRoot, "dist/bundle/cli.js");

export interface WorkerProcess {
  child: ChildProcess;
  lines: Array<Record<string, unknown>>;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first log line matching `pred`. */
  waitForLine(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  kill(signal?: NodeJS.Signals): void;
}

/** `command`: the CLI command and its arguments (`["api"]` starts the CoreSight API). */
export function spawnWorker(env: Record<string, string>, command: string[] = ["run"]): WorkerProcess {
  if (!fs.existsSync(cliPath)) throw new Error(`${cliPath} missing: run \`make build\` (make test does) before jest`);
  const child = spawn(process.execPath, [cliPath, ...command], {
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{ pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }> = [];
  let buf = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf("\n")) !== -1) {
      const text = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        const l = JSON.parse(text) as Record<string, unknown>;
        lines.push(l);
        for (const w of [...waiters]) {
          if (w.pred(l)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(l);
          }
        }
      } catch {
        // not a JSON line
      }
    }
  });
  let err = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (d: string) => {
    if (err.length < 20000) err += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  return {
    child,
    lines,
    stderr: () => err,
    exited,
    waitForLine(pred, timeoutMs = 60_000) {
      const found = lines.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${err.slice(-2000)}`)), timeoutMs);
        waiters.push({
          pred,
          resolve: (l) => {
            clearTimeout(t);
            resolve(l);
          },
        });
      });
    },
    kill(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // SIGKILL takes the whole process group (gdb too), like a node dying.
      if (signal === "SIGKILL") process.kill(-child.pid!, "SIGKILL");
      else child.kill(signal);
    },
  };
}

/** Polls `check` until it returns a value other than undefined. */
export async function eventually<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Resolves once a worker has bound its consumer and waits for events. */
export function waitReady(w: WorkerProcess, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  return w.waitForLine((l) => l.msg === "waiting for coredump.uploaded events", timeoutMs);
}

/**
 * The environment every queue test's worker shares: its own stream,
 * consumer and subject (unique per test `id`), its work directory under
 * `dir`, no metrics port, one job at a time. Tests add their sinks and sources.
 */
export function queueEnv(natsUrl: string, id: string, dir: string): Record<string, string> {
  return {
    NATS_URL: natsUrl,
    NATS_STREAM: `S_${id}`.toUpperCase(),
    NATS_CONSUMER: `c_${id}`,
    NATS_SUBJECT: `coredog.${id}.uploaded`,
    WORK_DIR: path.join(dir, "work"),
    METRICS_PORT: "0",
    WORKER_CONCURRENCY: "1",
  };
}

/** A gdb wrapper that, once given its command file, writes its pid (= its process group) to a marker file, waits, then runs gdb on it. */
export async function slowGdb(dir: string, seconds: number): Promise<{ gdb: string; marker: string }> {
  const gdb = path.join(dir, "slow-gdb.sh");
  const marker = path.join(dir, "gdb-started");
  // The start-up check (gdb --version) passes straight through.
  // The marker is written once a job's command file has arrived on stdin (lib/gdb/launch.ts), not when the
  // process starts: the worker starts its next gdb ahead, before any message (GDB_PRESTART).
  const commands = path.join(dir, "slow-gdb-commands");
  await fsp.writeFile(
    gdb,
    `#!/bin/sh\n[ "$1" = "--version" ] && exec gdb "$@"\ncat > "${commands}.$$"\necho $$ > "${marker}"\nsleep ${seconds}\nexec gdb "$@" < "${commands}.$$"\n`,
    { mode: 0o755 },
  );
  return { gdb, marker };
}
