/**
 * One analysis path: a real worker (queue → file:// download → analyzeDump →
 * file sink) and the real `coresight-worker analyze --json` give the same
 * result for the same dump, over every fixture core, and over the gzip and
 * zstd copies of one (size and compression are the dump's as it arrived).
 */
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import type { Result } from "../../lib/result.js";
import { coredumpEvent, TEST_EVENT_IMAGE } from "../helpers/events.js";
import { FIXTURE_NAMES, compressedCores, fixture, fixturesDir, requireFixture } from "../helpers/fixtures.js";
import { startNatsServer, type DevNatsServer } from "../helpers/natsServer.js";
import { cliPath, eventually, spawnWorker, type WorkerProcess } from "../helpers/workerProcess.js";

const DUMPS: Array<[string, string]> = [
  ...FIXTURE_NAMES.map((n): [string, string] => [n, fixture(n).core]),
  ["null-deref.gz", compressedCores.gzip],
  ["null-deref.zst", compressedCores.zstd],
];

/**
 * What legitimately differs between two runs of the same analysis: wall
 * times, and the envelope only the worker adds (its id, the event, the
 * attempt). Nothing else is dropped.
 */
function comparable(r: Record<string, unknown>): Record<string, unknown> {
  const { analysis_id: _a, attempt: _t, worker_id: _w, event: _e, analyzed_at: _at, worker: _wk, gdb, ...rest } = r;
  const g = gdb as Record<string, unknown> | null;
  return { ...rest, gdb: g && { ...g, duration_ms: "<ms>" } };
}

let nats: DevNatsServer;
let nc: NatsConnection;
let tmp: string;
let worker: WorkerProcess;
const env: Record<string, string> = {};

beforeAll(async () => {
  for (const n of FIXTURE_NAMES) requireFixture(n);
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-same-result-"));
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  Object.assign(env, {
    NATS_URL: nats.url,
    NATS_STREAM: "SAME_RESULT",
    NATS_SUBJECT: "coredog.same.uploaded",
    NATS_CONSUMER: "same",
    RESULT_SINKS: "file",
    RESULTS_DIR: path.join(tmp, "results"),
    ALLOWED_FILE_ROOTS: fixturesDir,
    WORK_DIR: path.join(tmp, "work"),
    LOG_FILE: path.join(tmp, "worker.log"),
    METRICS_PORT: "0",
    WORKER_CONCURRENCY: "2",
  });
  worker = spawnWorker(env);
  await worker.waitForLine((l) => l.msg === "waiting for coredump.uploaded events", 30_000);
});

afterAll(async () => {
  worker?.kill("SIGKILL");
  await worker?.exited;
  await nc?.close();
  await nats?.stop();
  await fs.rm(tmp, { recursive: true, force: true });
});

describe("the worker and `analyze` run the same analysis", () => {
  it("gives the same result document for every fixture dump, plain, gzip and zstd", async () => {
    const js = jetstream(nc);
    for (const [name, dump] of DUMPS) {
      await js.publish(env.NATS_SUBJECT!, JSON.stringify(coredumpEvent(`same-${name}`, `file://${dump}`, { file_name: path.basename(dump), pod_name: `pod-${name}` })));
    }
    const results = env.RESULTS_DIR!;
    const byPod = await eventually(
      async () => {
        const files = (await fs.readdir(results).catch(() => [] as string[])).filter((f) => f.endsWith(".json"));
        if (files.length < DUMPS.length) return undefined;
        const docs = await Promise.all(
          files.map(async (f) => JSON.parse(await fs.readFile(path.join(results, f), "utf8")) as Record<string, unknown> & { event: { pod: string } }),
        );
        return new Map(docs.map((d) => [d.event.pod, d]));
      },
      240_000,
      "a result per dump",
    );
    for (const [name, dump] of DUMPS) {
      const fromWorker = byPod.get(`pod-${name}`);
      expect(fromWorker).toBeDefined();
      // The event's image too: both paths run the image source (here it warns: the registry does not resolve).
      const cli = await execa(process.execPath, [cliPath, "analyze", "--json", "--image", TEST_EVENT_IMAGE, dump], {
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", WORK_DIR: path.join(tmp, "cli-work") },
        extendEnv: false,
        reject: false,
        stdin: "ignore",
      });
      const fromCli = JSON.parse(cli.stdout) as Result;
      expect({ name, ...comparable(fromCli as unknown as Record<string, unknown>) }).toEqual({ name, ...comparable(fromWorker!) });
      expect(fromCli.image).toMatchObject({ reference: TEST_EVENT_IMAGE, digest: null });
      if (name.endsWith(".gz") || name.endsWith(".zst")) {
        expect(fromCli.core?.compression).toBe(name.endsWith(".gz") ? "gzip" : "zstd");
        expect(fromCli.core?.size).toBe((await fs.stat(dump)).size);
      }
    }
  });
});
