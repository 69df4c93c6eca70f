import { loadConfig, CONFIG_VARIABLES } from "../../lib/config.js";
import { toError } from "../../lib/errors.js";
import { EXIT, envTable, parseArgs, type Command } from "../command.js";
import { startService } from "../service.js";

const run: Command = {
  name: "run",
  summary: "consume coredog.coredump.uploaded events from NATS JetStream and analyze them",
  help: `Usage: coresight-worker run

Runs the worker: binds the durable JetStream pull consumer shared by the
pool, downloads each event's dump, runs gdb, stores the result (RESULT_SINKS)
and only then acks the message. Logs JSON lines to LOG_FILE and stdout; every
event logs "Received coredump.uploaded".

SIGTERM/SIGINT: stop pulling, let in-flight jobs finish within
SHUTDOWN_GRACE_MS, return the rest to the queue, exit 0. A second signal
exits at once (messages are redelivered after ack_wait).

Configuration (environment variables):
${envTable(CONFIG_VARIABLES)}

Exit codes: 0 stopped cleanly, 3 configuration error, 1 start-up failed
(e.g. NATS unreachable).

Example:
  NATS_URL=nats://nats:4222 CORESIGHT_API_URL=http://coresight-api:8000 \\
  CORESIGHT_API_TOKEN=... coresight-worker run`,
  async run(argv) {
    parseArgs(argv, {});
    const config = loadConfig();
    const service = await startService(config);
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      signals++;
      if (signals > 1) {
        service.logger.warn({ signal: sig }, "second signal: exiting now; in-flight messages will be redelivered");
        service.logger.flush();
        process.exit(130);
      }
      service.logger.info({ signal: sig }, "signal received");
      service.stop().then(
        () => process.exit(EXIT.ok),
        (e: unknown) => {
          service.logger.error({ err: toError(e).message }, "shutdown failed");
          process.exit(EXIT.failed);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    // Node's default for both is to exit at once, leaving every in-flight
    // message unsettled until ack_wait, when the next worker meets the same
    // input. A stray rejection is logged and the worker goes on; after an
    // uncaught exception the process state is unknown: drain (settle what is
    // in flight) and exit 1 for the orchestrator to restart it.
    process.on("unhandledRejection", (reason: unknown) => {
      service.logger.error({ err: toError(reason).message, stack: toError(reason).stack }, "unhandled promise rejection; the worker keeps running");
    });
    process.on("uncaughtException", (e: Error) => {
      service.logger.fatal({ err: e.message, stack: e.stack }, "uncaught exception; draining in-flight jobs and exiting");
      service.stop().finally(() => process.exit(EXIT.failed));
    });
    await service.done;
    // The loop only ends through stop(); wait for it to finish.
    await service.stop();
    return EXIT.ok;
  },
};
export default run;
