/**
 * The outbox publisher with several API replicas on one PostgreSQL database
 * and a real nats-server: the replicas claim disjoint batches (FOR UPDATE
 * SKIP LOCKED), so every report is published exactly once, none twice and
 * none left behind. SQLite serves one replica and keeps its plain path,
 * covered by the API's other tests.
 */
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { openDatabase, type Db } from "../../api/db/connect.js";
import { acceptReport, countPending } from "../../api/db/queries.js";
import { createApiMetrics, type ApiMetrics } from "../../api/metrics.js";
import { startPublisher, type Publisher } from "../../api/outbox.js";
import { createLogger } from "../../lib/log.js";
import { startNatsServer, type DevNatsServer } from "../helpers/natsServer.js";
import { eventually } from "../helpers/workerProcess.js";
import { apiConfig, databases, type Databases } from "./helpers.js";

const REPORTS = 300;
const REPLICAS = 3;

describe("outbox publishers of several API replicas on PostgreSQL", () => {
  let dbs: Databases;
  let nats: DevNatsServer;
  beforeAll(async () => {
    dbs = await databases("postgres");
    nats = await startNatsServer();
  });
  afterAll(async () => {
    await nats?.stop();
    await dbs?.stop();
  });

  it(`publish ${REPORTS} reports between ${REPLICAS} replicas, each exactly once`, async () => {
    const url = await dbs.fresh("outbox");
    const config = apiConfig(url, { NATS_URL: nats.url, NATS_STREAM: "OUTBOX_TEST", NATS_SUBJECT: "outbox.test" });
    const replicas: Array<{ db: Db; metrics: ApiMetrics; publisher?: Publisher }> = [];
    for (let i = 0; i < REPLICAS; i++) {
      const db = await openDatabase(config.database);
      replicas.push({ db, metrics: createApiMetrics(() => countPending(db.kysely)) });
    }
    const k = replicas[0]!.db.kysely;
    try {
      const now = new Date().toISOString();
      for (let i = 0; i < REPORTS; i++) {
        await acceptReport(k, {
          analysisId: `outbox-${i}`,
          coredump: {
            received_at: now,
            event_id: `e-${i}`,
            event_source: "coredog",
            file_url: `http://x/core.${i}`,
            file_name: `core.${i}`,
            executable_path: null,
            file_size: 1,
            md5: null,
            image: null,
            pod: `p-${i}`,
            namespace: "prod",
            node: null,
            timestamp: null,
          },
          payload: (id) => JSON.stringify({ n: i, coredump_id: id }),
          now,
        });
      }
      // All replicas start on the same backlog at once.
      for (const r of replicas) r.publisher = startPublisher({ db: r.db, config, logger: createLogger({ level: "silent", stdout: false }), metrics: r.metrics });
      await eventually(async () => ((await countPending(k)) === 0 ? true : undefined), 60_000, "an empty outbox");

      const published = await Promise.all(replicas.map(async (r) => (await r.metrics.published.get()).values));
      const count = (duplicate: string) =>
        published
          .flat()
          .filter((v) => v.labels.duplicate === duplicate)
          .reduce((a, v) => a + v.value, 0);
      expect(count("false")).toBe(REPORTS);
      // Without SKIP LOCKED every replica publishes the same rows and JetStream answers duplicate.
      expect(count("true")).toBe(0);
      // The work was shared: more than one replica published.
      expect(published.filter((vals) => vals.some((v) => v.value > 0)).length).toBeGreaterThan(1);

      const nc = await connect({ servers: nats.url });
      try {
        const info = await (await jetstreamManager(nc)).streams.info("OUTBOX_TEST");
        expect(info.state.messages).toBe(REPORTS);
      } finally {
        await nc.close();
      }
    } finally {
      for (const r of replicas) await r.publisher?.stop();
      for (const r of replicas) await r.db.close();
    }
  });
});
