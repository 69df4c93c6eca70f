/** Shape of a CLI command and the exit codes every command documents. */
export interface Command {
  name: string;
  /** Full text for `coresight-worker <name> --help`. */
  help: string;
  run(argv: string[]): Promise<number>;
}

/** The `--help` table of a service's environment variables: name, what, default. */
export function envTable(vars: ReadonlyArray<readonly [string, string, string]>, width = 42): string {
  return vars.map(([name, def, what]) => `  ${name.padEnd(width)} ${what}${def ? ` [default: ${def}]` : ""}`).join("\n");
}

export const EXIT = {
  /** Success (for analyze: a completed result). */
  ok: 0,
  /** The analysis ran and produced a failed result (bad core, gdb error, ...). */
  failed: 1,
  /** Bad usage: unknown option, missing argument. */
  usage: 2,
  /** Bad configuration: an environment variable has a bad value. */
  config: 3,
  /** A required tool (gdb) is not installed. */
  missingTool: 4,
  /** Input file missing or unreadable. */
  noInput: 5,
} as const;

export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * Minimal option parser: `--flag`, `--opt value`, `--opt=value`, positionals,
 * `-h` for help, `--` ends the options. Unknown options (long or short), an
 * option without its value and a flag with one are a UsageError naming the option.
 */
export function parseArgs(argv: string[], spec: { flags?: string[]; options?: string[] }): { flags: Set<string>; options: Map<string, string>; positionals: string[] } {
  const flags = new Set<string>();
  const options = new Map<string, string>();
  const positionals: string[] = [];
  const known = new Set([...(spec.flags ?? []), ...(spec.options ?? []), "help"]);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === "-h") {
      flags.add("help");
      continue;
    }
    if (!arg.startsWith("--")) {
      // Only -h is a short option; any other "-x" is a mistyped option, not a
      // file name ("-" is stdin, "-1" a number). A file named "-x" goes after "--".
      if (/^-[A-Za-z]/.test(arg)) throw new UsageError(`unknown option ${arg}`);
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (!known.has(name)) throw new UsageError(`unknown option --${name}`);
    if ((spec.options ?? []).includes(name)) {
      const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
      // "--exe --json core" would otherwise take "--json" as the value and drop
      // the flag; a value that starts with "--" can be given as --exe=--x.
      if (value === undefined || (eq === -1 && value.startsWith("--"))) throw new UsageError(`--${name} needs a value`);
      options.set(name, value);
    } else {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      flags.add(name);
    }
  }
  return { flags, options, positionals };
}
