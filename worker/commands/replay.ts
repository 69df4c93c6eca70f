import { loadConfig } from "../../lib/config.js";
import { makeS3Client } from "../../lib/storage/s3.js";
import { createLogger } from "../../lib/log.js";
import { EXIT, parseArgs, UsageError, type Command } from "../command.js";
import { connectNats, ensureQueue } from "../queue.js";
import { eventFiles, replayEvents } from "../replay.js";

const replay: Command = {
  name: "replay",
  help: `Usage: coresight-worker replay <event.json|dir>... [--bucket NAME] [--expires SECONDS] [--fresh]

Publishes CloudEvents coredog.coredump.uploaded to NATS_SUBJECT on
NATS_URL (creating the stream when NATS_CREATE_STREAM allows). A directory
stands for its *.json files. When an event's data.file_url is a local path
(no URL scheme, relative to the event file or the current directory), the
dump is uploaded to S3 (S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
and file_url becomes a presigned GET URL, with md5 and file_size set, as
CoreDog reports it.

Each message carries Nats-Msg-Id = analysis_id, so replaying the same event
within the stream's duplicate window queues it once.

Options:
  --bucket NAME      bucket for uploaded dumps [default: coredumps]
  --expires SECONDS  presigned URL lifetime [default: 3600]
  --fresh            give each event a new id, so it is analyzed again

Example:
  coresight-worker replay fixtures/events/

Exit codes: 0 published, 2 usage error, 3 configuration error, 1 failure.`,
  async run(argv) {
    const args = parseArgs(argv, { flags: ["fresh"], options: ["bucket", "expires"] });
    if (args.positionals.length === 0) throw new UsageError("give at least one event file or directory");
    const expires = Number(args.options.get("expires") ?? 3600);
    if (!Number.isInteger(expires) || expires <= 0) throw new UsageError("--expires must be a positive integer");
    const config = loadConfig();
    const files = await eventFiles(args.positionals);
    const nc = await connectNats(config.nats, "coresight-worker replay");
    try {
      await ensureQueue(nc, config.nats, createLogger({ level: "warn", stdout: false, destination: process.stderr as never }));
      const done = await replayEvents(files, {
        nc,
        subject: config.nats.subject,
        s3: await makeS3Client(config.s3),
        bucket: args.options.get("bucket") ?? "coredumps",
        expiresSec: expires,
        fresh: args.flags.has("fresh"),
        log: (line) => process.stdout.write(line + "\n"),
      });
      process.stdout.write(`${done.length} event(s) published to ${config.nats.subject}\n`);
    } finally {
      await nc.drain();
    }
    return EXIT.ok;
  },
};
export default replay;
