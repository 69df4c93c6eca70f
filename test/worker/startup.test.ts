/**
 * Start-up, shutdown and the queue's owner, with real worker processes
 * (dist/bundle/cli.js) against a real nats-server: NATS down at start, a
 * missing stream with NATS_CREATE_STREAM=false, a dump larger than the free
 * space, a second SIGTERM and a SIGKILL while gdb runs, `queue apply`.
 * Dumps come from file:// URLs and results go to the file sink, so no S3 or
 * API is involved.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "@jest/globals";
import { spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { freePort } from "../../dev/port.js";
import { startNatsServer, type DevNatsServer } from "../helpers/natsServer.js";
import { coredumpEvent } from "../helpers/events.js";
import { cliPath, eventually, repoRoot, spawnWorker, type WorkerProcess, queueEnv, slowGdb, waitReady } from "../helpers/workerProcess.js";

const CORE = path.join(repoRoot, "build/fixtures/null-deref/core");
let nats: DevNatsServer;
let nc: NatsConnection;
let tmp: string;
const workers: WorkerProcess[] = [];
const groups: number[] = [];
const extraServers: DevNatsServer[] = [];

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-startup-test-"));
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
});

afterEach(async () => {
  for (const w of workers.splice(0)) {
    w.kill("SIGKILL");
    await w.exited;
  }
  // The slow gdb wrappers' sleeps (their shell is gone; its group may not be).
  for (const g of groups.splice(0)) {
    try {
      process.kill(-g, "SIGKILL");
    } catch {
      // gone
    }
  }
  for (const s of extraServers.splice(0)) await s.stop();
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
  await fs.rm(tmp, { recursive: true, force: true });
});

let seq = 0;
async function scenario(name: string, extra: Record<string, string> = {}) {
  const id = `${name}${++seq}`;
  const dir = path.join(tmp, id);
  await fs.mkdir(dir, { recursive: true });
  const env: Record<string, string> = {
    ...queueEnv(nats.url, id, dir),
    NATS_ACK_WAIT_MS: "4000",
    NATS_BACKOFF_MS: "200",
    RESULT_SINKS: "file",
    RESULTS_DIR: path.join(dir, "results"),
    ALLOWED_FILE_ROOTS: path.dirname(CORE),
    LOG_FILE: "",
    SHUTDOWN_GRACE_MS: "30000",
    ...extra,
  };
  const start = (more: Record<string, string> = {}, command?: string[]) => {
    const w = spawnWorker({ ...env, ...more }, command);
    workers.push(w);
    return w;
  };
  const ready = waitReady;
  const publish = async (data: Record<string, unknown> = {}, conn: NatsConnection = nc) => {
    await jetstream(conn).publish(env.NATS_SUBJECT!, JSON.stringify(coredumpEvent(`coredog-${id}`, `file://${CORE}`, { file_name: `core.${id}`, ...data })));
  };
  const results = async () => (await fs.readdir(env.RESULTS_DIR!).catch(() => [] as string[])).filter((f) => f.endsWith(".json"));
  return { id, dir, env, start, ready, publish, results };
}

const readPid = async (marker: string) =>
  eventually(
    async () => {
      const text = await fs.readFile(marker, "utf8").catch(() => "");
      return /^\d+\n$/.test(text) ? Number(text) : undefined;
    },
    30_000,
    "gdb to start",
  );
/** Whether a process runs (a zombie awaiting its reaper counts as gone). */
async function alive(pid: number): Promise<boolean> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8").catch(() => null);
  return stat !== null && !/^\d+ \(.*\) Z/.test(stat);
}

/** Live (non-zombie) processes of process group `pgid`, from /proc. */
async function groupMembers(pgid: number): Promise<number[]> {
  const live: number[] = [];
  for (const name of await fs.readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await fs.readFile(`/proc/${name}/stat`, "utf8").catch(() => "");
    // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] !== "Z" && Number(fields[2]) === pgid) live.push(Number(name));
  }
  return live;
}

describe("start-up", () => {
  it("NATS down at start: the worker waits (logs, alive, not ready), then processes once NATS is up", async () => {
    const natsPort = await freePort();
    const probePort = await freePort();
    const sc = await scenario("late", { NATS_URL: `nats://127.0.0.1:${natsPort}`, METRICS_PORT: String(probePort) });
    const w = sc.start();
    await w.waitForLine((l) => l.msg === "NATS not reachable; waiting for it (not ready)", 30_000);
    // Probes answer before NATS: alive, not ready, and they say why.
    expect((await fetch(`http://127.0.0.1:${probePort}/healthz`)).status).toBe(200);
    const notReady = await fetch(`http://127.0.0.1:${probePort}/readyz`);
    expect(notReady.status).toBe(503);
    expect(((await notReady.json()) as { failures: Record<string, string> }).failures.nats).toMatch(/connecting to NATS/);
    await w.waitForLine((l) => l.msg === "NATS not reachable; waiting for it (not ready)" && Number(l.attempt) >= 2, 30_000);
    expect(w.child.exitCode).toBeNull();

    const late = await startNatsServer({ port: natsPort });
    extraServers.push(late);
    await sc.ready(w);
    expect((await fetch(`http://127.0.0.1:${probePort}/readyz`)).status).toBe(200);
    const conn = await connect({ servers: late.url });
    try {
      await sc.publish({}, conn);
      await eventually(async () => ((await sc.results()).length === 1 ? true : undefined), 60_000, "the result");
    } finally {
      await conn.close();
    }
    const [file] = await sc.results();
    expect(JSON.parse(await fs.readFile(path.join(sc.env.RESULTS_DIR!, file!), "utf8"))).toMatchObject({ status: "completed" });
  });

  it("stream missing and NATS_CREATE_STREAM=false: one line naming the stream, exit 3, no hang", async () => {
    const sc = await scenario("nostream", { NATS_CREATE_STREAM: "false" });
    const w = sc.start();
    const exit = await w.exited;
    expect(exit.code).toBe(3);
    const stderr = w.stderr().trim();
    expect(stderr.split("\n")).toHaveLength(1);
    expect(stderr).toContain(`configuration error: NATS_STREAM: stream ${sc.env.NATS_STREAM} does not exist and NATS_CREATE_STREAM is false`);
    expect(stderr).toContain("queue apply");
  });

  it("no result sink configured: exit 3 naming CORESIGHT_API_URL and RESULT_SINKS, before touching NATS", async () => {
    const sc = await scenario("nosink", { RESULT_SINKS: "" });
    const w = sc.start();
    expect((await w.exited).code).toBe(3);
    expect(w.stderr()).toMatch(/configuration error: RESULT_SINKS: .*CORESIGHT_API_URL/);
    expect(w.lines.some((l) => l.msg === "coresight-worker starting")).toBe(false);
  });
});

describe("free space", () => {
  it("a dump whose file_size exceeds the work dir's free space is nak'ed with a delay, never downloaded", async () => {
    const sc = await scenario("space", { MAX_DUMP_BYTES: String(2 ** 52), NATS_MAX_DELIVER: "50" });
    const w = sc.start();
    await sc.ready(w);
    await sc.publish({ file_size: 2 ** 50 });
    const first = await w.waitForLine((l) => l.msg === "not enough free space for the dump; not downloading, the message is returned to the queue", 30_000);
    expect(first.file_size).toBe(2 ** 50);
    expect(Number(first.free_bytes)).toBeLessThan(2 ** 50);
    // Nak'ed, not acked: it comes back (delivery 2) and is refused again.
    await w.waitForLine((l) => l.msg === "job failed transiently; message will be redelivered" && Number(l.retry_in_ms) > 0, 30_000);
    await w.waitForLine((l) => l.msg === "Received coredump.uploaded" && l.delivery_count === 2, 30_000);
    expect(w.lines.some((l) => l.msg === "download started")).toBe(false);
    expect(await sc.results()).toHaveLength(0);
    const info = await (await jetstreamManager(nc)).consumers.info(sc.env.NATS_STREAM!, sc.env.NATS_CONSUMER!);
    expect(info.num_ack_pending + info.num_pending).toBe(1);
  });
});

/** A worker whose job's (slow) gdb is running: the worker and gdb's pid. */
async function gdbRunning(name: string): Promise<{ w: WorkerProcess; pid: number }> {
  const sc = await scenario(name);
  const slow = await slowGdb(sc.dir, 60);
  const w = sc.start({ GDB_PATH: slow.gdb });
  await sc.ready(w);
  await sc.publish();
  const pid = await readPid(slow.marker);
  groups.push(pid);
  return { w, pid };
}

describe("gdb dies with its worker", () => {
  it("a second SIGTERM kills every gdb process group before exiting", async () => {
    const { w, pid } = await gdbRunning("twice");
    expect(await alive(pid)).toBe(true);
    w.kill("SIGTERM");
    await w.waitForLine((l) => l.msg === "signal received", 10_000);
    w.kill("SIGTERM");
    const exit = await w.exited;
    expect(exit.code).toBe(130);
    // The job's gdb and the one started ahead for the next job (GDB_PRESTART, the default).
    expect(w.lines.find((l) => String(l.msg).startsWith("second signal"))?.gdb_killed).toBe(2);
    await eventually(async () => ((await alive(pid)) ? undefined : true), 10_000, "gdb gone");
    // Its whole group, the wrapper's sleep too.
    await eventually(async () => ((await groupMembers(pid)).length === 0 ? true : undefined), 10_000, "gdb's group gone");
  });

  it("SIGKILL of the worker process alone: gdb (in its own process group) dies with it", async () => {
    const { w, pid } = await gdbRunning("sigkill");
    // gdb's group is not the worker's: killing the worker's group would not reach it.
    expect(pid).not.toBe(w.child.pid);
    process.kill(w.child.pid!, "SIGKILL");
    await w.exited;
    await eventually(async () => ((await alive(pid)) ? undefined : true), 10_000, "gdb gone after its worker");
  });
});

/** Runs `coresight-worker queue <args>` to the end. */
function queueCommand(env: Record<string, string>, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliPath, "queue", ...args], { env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("queue apply owns the consumer's settings; run only checks them", () => {
  it("apply creates the stream, the consumer and the result stream; run with NATS_CREATE_STREAM=false then starts", async () => {
    const sc = await scenario("apply", { NATS_CREATE_STREAM: "false", RESULT_SINKS: "file,nats", RESULT_SUBJECT: `coresight.apply${seq}`, NATS_RESULT_STREAM: `R_APPLY${seq}` });
    const r = await queueCommand(sc.env, ["apply", "--wait", "5"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`consumer ${sc.env.NATS_CONSUMER}: created`);
    const jsm = await jetstreamManager(nc);
    const info = await jsm.consumers.info(sc.env.NATS_STREAM!, sc.env.NATS_CONSUMER!);
    expect(info.config.max_deliver).toBe(-1);
    expect(info.config.ack_wait).toBe(4000 * 1e6);
    expect((await jsm.streams.info(sc.env.NATS_RESULT_STREAM!)).config.subjects).toEqual([`${sc.env.RESULT_SUBJECT}.>`]);
    expect((await queueCommand(sc.env, ["check"])).code).toBe(0);
    const w = sc.start();
    await sc.ready(w);
    expect(w.lines.some((l) => /differ/.test(String(l.msg)))).toBe(false);
  });

  it("run warns on drift and changes nothing; apply then aligns the consumer (no server max_deliver)", async () => {
    const sc = await scenario("drift");
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: sc.env.NATS_STREAM!, subjects: [sc.env.NATS_SUBJECT!] });
    await jsm.consumers.add(sc.env.NATS_STREAM!, {
      durable_name: sc.env.NATS_CONSUMER!,
      ack_policy: "explicit" as never,
      max_deliver: 2,
      ack_wait: 30_000 * 1e6,
      filter_subject: sc.env.NATS_SUBJECT!,
    });
    const w = sc.start();
    await sc.ready(w);
    const warn = w.lines.find((l) => /consumer settings differ/.test(String(l.msg)));
    expect(warn?.drift).toEqual({ ack_wait: { have: 30_000 * 1e6, want: 4000 * 1e6 }, max_deliver: { have: 2, want: -1 } });
    expect((await jsm.consumers.info(sc.env.NATS_STREAM!, sc.env.NATS_CONSUMER!)).config.max_deliver).toBe(2);
    const check = await queueCommand(sc.env, ["check"]);
    expect(check.code).toBe(1);
    expect(check.stdout).toContain("max_deliver is 2, configured -1");
    const r = await queueCommand(sc.env, ["apply"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("updated");
    const info = await jsm.consumers.info(sc.env.NATS_STREAM!, sc.env.NATS_CONSUMER!);
    expect(info.config.max_deliver).toBe(-1);
    expect(info.config.ack_wait).toBe(4000 * 1e6);
  });
});
