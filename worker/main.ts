/**
 * coresight-worker CLI: one binary, one command per job an operator has.
 * Commands live in worker/commands/; this file only dispatches. The entry
 * point is worker/cli.ts, which checks the Node version before loading this.
 */
import { ConfigError } from "../lib/config.js";
import { toError } from "../lib/errors.js";
import { VERSION } from "../lib/version.js";
import { EXIT, UsageError, type Command } from "./command.js";

const loaders: Record<string, () => Promise<Command>> = {
  analyze: async () => (await import("./commands/analyze.js")).default,
  parse: async () => (await import("./commands/parse.js")).default,
  run: async () => (await import("./commands/run.js")).default,
  queue: async () => (await import("./commands/queue.js")).default,
  replay: async () => (await import("./commands/replay.js")).default,
  symbols: async () => (await import("./commands/symbols.js")).default,
  signature: async () => (await import("./commands/signature.js")).default,
  schema: async () => (await import("./commands/schema.js")).default,
  api: async () => (await import("./commands/api.js")).default,
  token: async () => (await import("./commands/token.js")).default,
};

async function topHelp(): Promise<string> {
  const lines = ["Usage: coresight-worker <command> [options]", "", "Commands:"];
  for (const [name, load] of Object.entries(loaders)) {
    const cmd = await load().catch(() => undefined);
    if (cmd) lines.push(`  ${name.padEnd(10)} ${cmd.summary}`);
  }
  lines.push(
    "",
    "Run `coresight-worker <command> --help` for a command's options.",
    "",
    "Exit codes: 0 ok, 1 analysis failed, 2 usage error, 3 configuration error,",
    "            4 gdb not installed, 5 input file missing or unreadable.",
  );
  return lines.join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write((await topHelp()) + "\n");
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === "--version") {
    process.stdout.write(`coresight-worker ${VERSION}\n`);
    return EXIT.ok;
  }
  const load = loaders[name];
  if (!load) {
    process.stderr.write(`coresight-worker: unknown command ${JSON.stringify(name)}\n\n${await topHelp()}\n`);
    return EXIT.usage;
  }
  const cmd = await load();
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(cmd.help.trimEnd() + "\n");
    return EXIT.ok;
  }
  try {
    return await cmd.run(rest);
  } catch (e: unknown) {
    const err = toError(e);
    if (err instanceof UsageError) {
      process.stderr.write(`coresight-worker ${name}: ${err.message}\n(see coresight-worker ${name} --help)\n`);
      return EXIT.usage;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`coresight-worker ${name}: configuration error: ${err.message}\n`);
      return EXIT.config;
    }
    process.stderr.write(`coresight-worker ${name}: ${err.stack ?? err.message}\n`);
    return EXIT.failed;
  }
}
