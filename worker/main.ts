/**
 * coresight-worker CLI: one binary, one command per job an operator has.
 * Commands live in worker/commands/; this file only dispatches. The entry
 * point is worker/cli.ts, which checks the Node version before loading this.
 *
 * Start-up is part of the interface: `--help` and `<command> --help` are what
 * people type first and scripts call to probe the binary. So this file
 * imports nothing heavy (no zod, no execa, no AWS SDK): the top-level help is
 * the table below, a command's help comes from its `*.help.ts` module where it
 * has one (text only), and a command module is imported only to run it.
 */
import { EXIT, UsageError, type Command } from "./command.js";

interface Entry {
  /** One line for the top-level --help. */
  summary: string;
  load: () => Promise<Command>;
  /** The command's help without loading the command, where it has a text-only help module. */
  help?: () => Promise<string>;
  /** Work started before the command's modules load (their loading is most of a short command's time); undone by `after`. */
  before?: (args: string[]) => Promise<void>;
  after?: () => Promise<void>;
}

/**
 * The gdb an `analyze` will most likely run: --gdb's, with the defaults of
 * GDB_MAX_OUTPUT_BYTES (`maxOutputBytes`) and of gdb's debuginfod (off). A guess made before the
 * configuration is loaded: runGdb uses the prestarted gdb only when its real
 * launch is equal (lib/gdb/launch.ts), and the guess is killed otherwise.
 */
function likelyGdb(args: string[], maxOutputBytes: number): { gdbPath: string; debuginfod: null; maxOutputBytes: number } {
  let gdbPath = "gdb";
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--gdb" && args[i + 1] !== undefined) gdbPath = args[i + 1]!;
    else if (args[i]!.startsWith("--gdb=")) gdbPath = args[i]!.slice("--gdb=".length);
  }
  return { gdbPath, debuginfod: null, maxOutputBytes };
}

const COMMANDS: Record<string, Entry> = {
  analyze: {
    summary: "Analyze a core dump as the worker does: signal, crash frame, signature, symbols",
    load: async () => (await import("./commands/analyze.js")).default,
    help: async () => (await import("./commands/analyze.help.js")).HELP,
    // gdb starts (~70 ms: its binary, libraries, Python) while the command's modules load and the core's modules are found.
    before: async (args) => {
      const launch = await import("../lib/gdb/launch.js");
      launch.prestartGdb(likelyGdb(args, launch.DEFAULT_GDB_MAX_OUTPUT_BYTES));
    },
    after: async () => (await import("../lib/gdb/launch.js")).stopPrestartedGdb(),
  },
  parse: {
    summary: "Analyze gdb backtrace text (file or stdin): signal, crash frame, signature",
    load: async () => (await import("./commands/parse.js")).default,
  },
  run: {
    summary: "consume coredog.coredump.uploaded events from NATS JetStream and analyze them",
    load: async () => (await import("./commands/run.js")).default,
  },
  queue: {
    summary: "create or update the JetStream stream and consumer the pool shares (queue apply)",
    load: async () => (await import("./commands/queue.js")).default,
  },
  replay: {
    summary: "publish fixture events (uploading local dumps to S3 first) to the queue",
    load: async () => (await import("./commands/replay.js")).default,
  },
  symbols: {
    summary: "store executables/debug files by build-id (CI) and show what a core needs",
    load: async () => (await import("./commands/symbols.js")).default,
    help: async () => (await import("./commands/symbols.help.js")).HELP,
  },
  signature: {
    summary: "Explain a crash's signature frame by frame (signature explain <result.json|core>)",
    load: async () => (await import("./commands/signature.js")).default,
  },
  schema: {
    summary: "print the result schema v1 as JSON Schema",
    load: async () => (await import("./commands/schema.js")).default,
  },
  api: {
    summary: "the CoreSight API: take CoreDog's reports, queue them, store results, group crashes",
    load: async () => (await import("./commands/api.js")).default,
  },
  token: {
    summary: "create, list and revoke the CoreSight API's tokens (stored hashed in DATABASE_URL)",
    load: async () => (await import("./commands/token.js")).default,
  },
};

function topHelp(): string {
  const lines = ["Usage: coresight-worker <command> [options]", "", "Commands:"];
  for (const [name, { summary }] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${summary}`);
  lines.push(
    "",
    "Run `coresight-worker <command> --help` for a command's options.",
    "",
    "Exit codes: 0 ok, 1 analysis failed, 2 usage error, 3 configuration error,",
    "            4 gdb not installed, 5 input file missing or unreadable.",
  );
  return lines.join("\n");
}

/** Runs the CLI on `argv` (without node and the script); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(topHelp() + "\n");
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === "--version") {
    const { VERSION } = await import("../lib/version.js");
    process.stdout.write(`coresight-worker ${VERSION}\n`);
    return EXIT.ok;
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) {
    process.stderr.write(`coresight-worker: unknown command ${JSON.stringify(name)}\n\n${topHelp()}\n`);
    return EXIT.usage;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    const help = entry.help ? await entry.help() : (await entry.load()).help;
    process.stdout.write(help.trimEnd() + "\n");
    return EXIT.ok;
  }
  await entry.before?.(rest);
  try {
    const cmd = await entry.load();
    return await cmd.run(rest);
  } catch (e: unknown) {
    const { toError } = await import("../lib/errors.js");
    const { ConfigError } = await import("../lib/config.js");
    const err = toError(e);
    // The reader closed the pipe (`parse --json | head`): it has what it wanted; like other Unix tools, stop quietly.
    if ((err as NodeJS.ErrnoException).code === "EPIPE") return EXIT.ok;
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
  } finally {
    await entry.after?.();
  }
}
