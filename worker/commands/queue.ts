import { CONFIG_VARIABLES, loadConfig } from "../../lib/config.js";
import { toError } from "../../lib/errors.js";
import { createLogger } from "../../lib/log.js";
import { EXIT, UsageError, envTable, parseArgs, type Command } from "../command.js";
import { applyQueue, connectNats, consumerDrift, wantedConsumer } from "../queue.js";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";

const QUEUE_VARIABLES = CONFIG_VARIABLES.filter(([name]) => /^(NATS_|RESULT_SINKS|RESULT_SUBJECT|LOG_LEVEL)/.test(name));

/** Connects, retrying until `waitMs` is over (a Helm hook may start before NATS answers). */
async function connectWithin(cfg: Parameters<typeof connectNats>[0], name: string, waitMs: number, log: (m: string) => void): Promise<NatsConnection> {
  const deadline = Date.now() + waitMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await connectNats(cfg, name, 5000);
    } catch (e: unknown) {
      if (Date.now() + 2000 > deadline) throw e;
      log(`NATS ${cfg.url} not reachable (try ${attempt}: ${toError(e).message}); retrying in 2 s`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

const queue: Command = {
  name: "queue",
  help: `Usage: coresight-worker queue apply [--wait SECONDS]
       coresight-worker queue check [--wait SECONDS]

The one owner of the queue's settings. \`run\` only checks them, warns when
they differ and never changes an existing consumer.

apply  creates the stream NATS_STREAM (subject NATS_SUBJECT) when missing,
       creates the durable consumer NATS_CONSUMER or updates it to
       NATS_ACK_WAIT_MS and no server-side max_deliver (the worker itself
       gives up at NATS_MAX_DELIVER), and, when RESULT_SINKS includes nats,
       creates the result stream NATS_RESULT_STREAM. NATS_CREATE_STREAM does
       not apply: creating is what this command is for. The Helm chart runs
       it as a pre-install/pre-upgrade hook Job.
check  prints the consumer's settings that differ from NATS_*; exit 1 when
       something differs or is missing.

Options:
  --wait SECONDS  keep trying to reach NATS this long [default: 60]

Configuration (environment variables):
${envTable(QUEUE_VARIABLES)}

Exit codes: 0 done (check: no drift), 1 failed (check: drift or missing),
2 usage error, 3 configuration error.`,
  async run(argv) {
    const args = parseArgs(argv, { options: ["wait"] });
    const [action, ...extra] = args.positionals;
    if (action !== "apply" && action !== "check") throw new UsageError(action ? `unknown action ${JSON.stringify(action)} (apply or check)` : "give an action: apply or check");
    if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
    const waitSec = Number(args.options.get("wait") ?? 60);
    if (!Number.isInteger(waitSec) || waitSec < 0) throw new UsageError("--wait must be a whole number of seconds");
    const config = loadConfig();
    const say = (m: string) => process.stdout.write(`${m}\n`);
    const nc = await connectWithin(config.nats, `coresight-worker queue ${action}`, waitSec * 1000, (m) => process.stderr.write(`${m}\n`));
    try {
      const cfg = config.nats;
      if (action === "apply") {
        const logger = createLogger({ level: config.logLevel === "info" ? "warn" : config.logLevel, stdout: false, destination: process.stderr as never });
        const withResults = config.resultSinks.includes("nats") ? config.resultSubject : null;
        const r = await applyQueue(nc, cfg, withResults, logger);
        say(`stream ${cfg.stream} (${cfg.subject}): present`);
        say(`consumer ${cfg.consumer}: ${r.consumer} (ack_wait ${cfg.ackWaitMs} ms, server max_deliver none, worker NATS_MAX_DELIVER ${cfg.maxDeliver})`);
        if (withResults) say(`result stream ${cfg.resultStream} (${withResults}.>): present`);
        return EXIT.ok;
      }
      const jsm = await jetstreamManager(nc);
      let have;
      try {
        have = (await jsm.consumers.info(cfg.stream, cfg.consumer)).config;
      } catch (e: unknown) {
        say(`consumer ${cfg.consumer} on stream ${cfg.stream}: missing (${toError(e).message})`);
        return EXIT.failed;
      }
      const drift = consumerDrift(have, cfg);
      const keys = Object.keys(drift);
      if (keys.length === 0) {
        say(`consumer ${cfg.consumer}: as configured (${JSON.stringify({ ...wantedConsumer(cfg) })})`);
        return EXIT.ok;
      }
      for (const k of keys) say(`consumer ${cfg.consumer}: ${k} is ${JSON.stringify(drift[k]!.have)}, configured ${JSON.stringify(drift[k]!.want)}`);
      return EXIT.failed;
    } finally {
      await nc.close();
    }
  },
};
export default queue;
