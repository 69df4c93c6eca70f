import { loadConfig, requireResultSink, CONFIG_VARIABLES } from "../../lib/config.js";
import { toError } from "../../lib/errors.js";
import { killAllGdb } from "../../lib/gdb/run.js";
import { EXIT, envTable, parseArgs, type Command } from "../command.js";
import { StartupAborted, startService, type Service } from "../service.js";

const run: Command = {
  name: "run",
  help: `Usage: coresight-worker run

Runs the worker: binds the durable JetStream pull consumer shared by the
pool, downloads each event's dump, runs gdb, stores the result (RESULT_SINKS)
and only then acks the message. Logs JSON lines to LOG_FILE and stdout; every
event logs "Received coredump.uploaded".

A result sink is required: CORESIGHT_API_URL (the http sink) or
RESULT_SINKS; with neither, run refuses to start (exit 3) rather than keep
results in a directory that vanishes with the pod.

Start-up: the probes answer first (/healthz 200, /readyz 503 until the
consumer is bound). NATS down: the worker waits for it, retrying and logging,
not ready. It checks the stream and the consumer (owned by
\`coresight-worker queue apply\`): settings that differ are a warning; missing
ones are created when NATS_CREATE_STREAM allows, else exit 3.

SIGTERM/SIGINT: stop pulling, let in-flight jobs finish within
SHUTDOWN_GRACE_MS, return the rest to the queue, exit 0. A second signal
kills every gdb process group and exits at once (130; messages are
redelivered after ack_wait). gdb also dies with the worker when the worker is
killed (setpriv --pdeathsig KILL).

Configuration (environment variables):
${envTable(CONFIG_VARIABLES)}

Exit codes: 0 stopped cleanly, 3 configuration error (also: no result sink,
stream or consumer missing with NATS_CREATE_STREAM=false), 1 start-up failed,
130 second signal.

Example:
  NATS_URL=nats://nats:4222 CORESIGHT_API_URL=http://coresight-api:8000 \\
  CORESIGHT_API_TOKEN=... coresight-worker run`,
  async run(argv) {
    parseArgs(argv, {});
    const config = loadConfig();
    requireResultSink(config);
    // Signals are handled from the start: one while NATS is still awaited cancels the start-up.
    const startup = new AbortController();
    let service: Service | null = null;
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      signals++;
      if (!service) {
        if (signals > 1) process.exit(130);
        startup.abort();
        return;
      }
      const svc = service;
      if (signals > 1) {
        // gdb runs in its own process group: exiting alone would leave it running.
        const killed = killAllGdb();
        svc.consumer.abortAll();
        svc.logger.warn({ signal: sig, gdb_killed: killed }, "second signal: killed every gdb process group; exiting now; in-flight messages will be redelivered");
        svc.logger.flush();
        process.exit(130);
      }
      svc.logger.info({ signal: sig }, "signal received");
      svc.stop().then(
        () => process.exit(EXIT.ok),
        (e: unknown) => {
          svc.logger.error({ err: toError(e).message }, "shutdown failed");
          process.exit(EXIT.failed);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    try {
      service = await startService(config, { signal: startup.signal });
    } catch (e: unknown) {
      if (e instanceof StartupAborted) return EXIT.ok;
      throw e;
    }
    // Node's default for both is to exit at once, leaving every in-flight
    // message unsettled until ack_wait, when the next worker meets the same
    // input. A stray rejection is logged and the worker goes on; after an
    // uncaught exception the process state is unknown: drain (settle what is
    // in flight) and exit 1 for the orchestrator to restart it.
    process.on("unhandledRejection", (reason: unknown) => {
      service?.logger.error({ err: toError(reason).message, stack: toError(reason).stack }, "unhandled promise rejection; the worker keeps running");
    });
    process.on("uncaughtException", (e: Error) => {
      if (!service) {
        process.stderr.write(`coresight-worker run: uncaught exception during start-up: ${e.stack ?? e.message}\n`);
        process.exit(EXIT.failed);
      }
      service.logger.fatal({ err: e.message, stack: e.stack }, "uncaught exception; draining in-flight jobs and exiting");
      void service.stop().finally(() => process.exit(EXIT.failed));
    });
    await service.done;
    // The loop only ends through stop(); wait for it to finish.
    await service.stop();
    return EXIT.ok;
  },
};
export default run;
