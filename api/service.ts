/**
 * The CoreSight API service: database (migrated at start), outbox publisher,
 * HTTP server. start → { url, stop }; stop() is idempotent and closes in
 * order: stop taking requests (in-flight ones finish), stop publishing,
 * close the database. Signal handling is the CLI's (worker/commands/api.ts).
 */
import type { ApiConfig } from "../lib/config.js";
import { toError } from "../lib/errors.js";
import { createLogger, type Logger } from "../lib/log.js";
import { createAuthenticator } from "./auth.js";
import { openDatabase, type Db } from "./db/connect.js";
import { countPending } from "./db/queries.js";
import { createApiMetrics } from "./metrics.js";
import { channelsOf, startNotifier } from "./notify.js";
import { startPublisher } from "./outbox.js";
import { storedRoleOf } from "./tokens.js";
import { createRequestHandler, listen } from "./server.js";

export interface ApiService {
  /** http://host:port the API listens on (loopback address when bound to 0.0.0.0). */
  url: string;
  port: number;
  logger: Logger;
  db: Db;
  stop(): Promise<void>;
}

export async function startApiService(config: ApiConfig, opts: { logger?: Logger } = {}): Promise<ApiService> {
  const logger = opts.logger ?? createLogger({ level: config.logLevel, file: config.logFile, base: { pid: process.pid, service: "coresight-api" } });
  const db = await openDatabase(config.database);
  logger.info({ database: db.kind }, "database ready");
  const metrics = createApiMetrics(() => countPending(db.kysely));
  const publisher = startPublisher({ db, config, logger, metrics });
  const auth = createAuthenticator({ agent: config.agentTokens, worker: config.workerTokens, read: config.readTokens }, (t) => storedRoleOf(db.kysely, t));
  const channels = channelsOf(config.notify);
  const notifier = startNotifier({ db, config: config.notify, logger });
  let http;
  try {
    http = await listen(
      createRequestHandler({ db, auth, publisher, metrics, logger, maxBodyBytes: config.maxBodyBytes, notify: { channels, notifier } }),
      config.listen.host,
      config.listen.port,
      config.shutdownGraceMs,
    );
  } catch (e: unknown) {
    await notifier.stop();
    await publisher.stop();
    await db.close();
    throw e;
  }
  const shownHost = config.listen.host === "0.0.0.0" || config.listen.host === "::" ? "127.0.0.1" : config.listen.host;
  const url = `http://${shownHost.includes(":") ? `[${shownHost}]` : shownHost}:${http.port}`;
  logger.info({ url, listen: `${config.listen.host}:${http.port}` }, "CoreSight API listening");

  let stopping: Promise<void> | null = null;
  const server = http;
  return {
    url,
    port: http.port,
    logger,
    db,
    stop() {
      stopping ??= (async () => {
        const steps: Array<[string, () => Promise<void>]> = [
          ["http", () => server.close()],
          ["outbox", () => publisher.stop()],
          ["notify", () => notifier.stop()],
          ["database", () => db.close()],
        ];
        for (const [name, step] of steps) {
          try {
            await step();
          } catch (e: unknown) {
            logger.error({ step: name, err: toError(e).message }, "shutdown step failed");
          }
        }
        logger.info("CoreSight API stopped");
      })();
      return stopping;
    },
  };
}
