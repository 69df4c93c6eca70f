import { API_CONFIG_VARIABLES, loadApiConfig } from "../../lib/config.js";
import { toError } from "../../lib/errors.js";
import { startApiService } from "../../api/service.js";
import { EXIT, envTable, parseArgs, type Command } from "../command.js";

const api: Command = {
  name: "api",
  help: `Usage: coresight-worker api

Runs the CoreSight API. CoreDog agents POST their coredog.coredump.uploaded
CloudEvent to the API root (set CoreDog's apiUrl to http://<host>:8000) with
an agent token; the report is committed to the database before the answer
(202 {coredump_id, analysis_id, status}) and then published to the JetStream
stream the worker pool consumes. Workers PUT results to
/api/v1/analyses/{id} with a worker token; crashes are grouped by signature.
Schema migrations run at start.

Configuration (environment variables):
${envTable(API_CONFIG_VARIABLES, 48)}

SIGTERM/SIGINT: stop taking requests, finish in-flight ones, exit 0.

Exit codes: 0 stopped cleanly, 3 configuration error, 1 start-up failed
(e.g. database unreachable).

Example:
  DATABASE_URL=postgres://coresight:...@db:5432/coresight NATS_URL=nats://nats:4222 \\
  CORESIGHT_AGENT_TOKENS=... CORESIGHT_WORKER_TOKENS=... coresight-worker api`,
  async run(argv) {
    parseArgs(argv, {});
    const config = loadApiConfig();
    const service = await startApiService(config);
    await new Promise<void>((resolve) => {
      let signals = 0;
      const onSignal = (sig: NodeJS.Signals) => {
        if (++signals > 1) {
          service.logger.warn({ signal: sig }, "second signal: exiting now");
          process.exit(130);
        }
        service.logger.info({ signal: sig }, "signal received");
        service.stop().then(resolve, (e: unknown) => {
          service.logger.error({ err: toError(e).message }, "shutdown failed");
          resolve();
        });
      };
      process.on("SIGTERM", onSignal);
      process.on("SIGINT", onSignal);
    });
    return EXIT.ok;
  },
};
export default api;
