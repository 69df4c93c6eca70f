/**
 * `coresight-worker symbols`: fill and inspect the symbol store.
 *
 *   add   what CI runs after building an image: store executables and debug
 *         files under their build-ids
 *   list  what a core needs: its modules and where each was (or was not) found
 *   id    print files' build-ids
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { loadConfig } from "../../lib/config.js";
import { toError } from "../../lib/errors.js";
import { makeS3Client } from "../../lib/storage/s3.js";
import { addToStore } from "../../lib/symbols/add.js";
import { describeElf } from "../../lib/elf/buildId.js";
import { NotElfError } from "../../lib/elf/file.js";
import { prepareSymbols, type PreparedSymbols } from "../../lib/symbols/prepare.js";
import { symbolicationOf, toModules } from "../../lib/symbols/report.js";
import { parseOrder } from "../../lib/symbols/resolve.js";
import { openSymbolStore } from "../../lib/symbols/store.js";
import { UnstripError } from "../../lib/symbols/unstrip.js";
import { HELP } from "./symbols.help.js";
import { EXIT, parseArgs, UsageError, type Command } from "../command.js";
import { oneLine, printable } from "./parse.js";

export interface SymbolsIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

export interface SymbolsDeps {
  io?: SymbolsIo;
  env?: Record<string, string | undefined>;
  /** An S3 client to use instead of one built from the environment. */
  s3?: S3Client | null;
}

const processIo: SymbolsIo = {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
};

async function missingInput(files: string[], io: SymbolsIo): Promise<boolean> {
  let missing = false;
  for (const f of files) {
    try {
      await fs.access(f, fs.constants.R_OK);
    } catch {
      io.stderr(`coresight-worker symbols: ${f}: no such file or not readable\n`);
      missing = true;
    }
  }
  return missing;
}

async function add(argv: string[], deps: Required<Pick<SymbolsDeps, "io">> & SymbolsDeps): Promise<number> {
  const { io } = deps;
  const args = parseArgs(argv, { flags: ["json"], options: ["store"] });
  if (args.positionals.length === 0) throw new UsageError("symbols add: give at least one file");
  const config = loadConfig(deps.env);
  const location = args.options.get("store") ?? config.symbols.store;
  if (!location) throw new UsageError("symbols add: no store: pass --store DIR|s3://bucket/prefix or set SYMBOL_STORE");
  if (await missingInput(args.positionals, io)) return EXIT.noInput;
  const s3 = deps.s3 !== undefined ? deps.s3 : await makeS3Client(config.s3);
  const store = openSymbolStore(location, s3);
  const added = await addToStore(args.positionals, store);
  if (args.flags.has("json")) {
    io.stdout(JSON.stringify({ store: store.location, files: added }, null, 2) + "\n");
  } else {
    for (const a of added) {
      if (a.error) io.stderr(`${a.file}: not stored: ${a.error}\n`);
      else io.stdout(`${a.build_id}  ${a.kinds.join("+").padEnd(20)} ${a.file}\n`);
    }
    const ok = added.filter((a) => !a.error).length;
    io.stdout(`${ok} of ${added.length} file(s) stored in ${store.location}\n`);
  }
  return added.some((a) => a.error) ? EXIT.failed : EXIT.ok;
}

function renderList(p: PreparedSymbols, core: string): string {
  const lines = [
    `core:        ${core} (${p.inventory.machine}${p.foreign ? ", foreign: gdb-multiarch" : ""})`,
    `executable:  ${oneLine(p.inventory.executable ?? "?")}`,
    `command:     ${oneLine(p.inventory.commandLine ?? "?")}`,
    "",
  ];
  for (const m of p.modules) {
    const where =
      m.status === "found"
        ? `${m.source}: ${m.file}`
        : m.status === "mismatched"
          ? `wrong build at ${m.rejected.map((r) => `${r.source}: ${r.file} (${r.build_id ?? "no build-id"})`).join(", ")}`
          : "";
    const dbg = m.debug ? ` + debug from ${m.debug.source}: ${m.debug.file}` : "";
    lines.push(`${m.status.padEnd(10)} ${(m.build_id ?? "-").padEnd(40)} ${m.path}${m.executable ? " [exe]" : ""}`);
    if (where) lines.push(`           ${where}${dbg} (${m.symbols}${m.unverified ? ", build-id not in core: unverified" : ""})`);
    for (const e of m.errors) lines.push(`           error: ${e}`);
  }
  const s = symbolicationOf(p.modules);
  lines.push("", `found ${s.found}, missing ${s.missing}, mismatched ${s.mismatched}`);
  if (s.missing_build_ids.length > 0) lines.push("build-ids to upload (coresight-worker symbols add):", ...s.missing_build_ids.map((id) => `  ${id}`));
  return lines.join("\n") + "\n";
}

async function list(argv: string[], deps: Required<Pick<SymbolsDeps, "io">> & SymbolsDeps): Promise<number> {
  const { io } = deps;
  const args = parseArgs(argv, { flags: ["json"], options: ["store", "exe", "sysroot", "debuginfod", "order"] });
  if (args.positionals.length !== 1) throw new UsageError("symbols list: give exactly one core");
  const core = args.positionals[0]!;
  const config = loadConfig(deps.env);
  let order;
  try {
    order = args.options.has("order") ? parseOrder(args.options.get("order")!) : undefined;
  } catch (e: unknown) {
    throw new UsageError(toError(e).message);
  }
  const inputs = [core, ...(args.options.has("exe") ? [args.options.get("exe")!] : [])];
  if (await missingInput(inputs, io)) return EXIT.noInput;
  const store = args.options.get("store") ?? config.symbols.store;
  const s3 = deps.s3 !== undefined ? deps.s3 : await makeS3Client(config.s3);
  const workDir = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-symbols-"));
  try {
    const p = await prepareSymbols({
      core,
      workDir,
      exe: args.options.get("exe") ?? null,
      sysroot: args.options.get("sysroot") ?? null,
      symbols: {
        ...config.symbols,
        ...(store ? { store } : {}),
        ...(args.options.has("debuginfod") ? { debuginfodUrls: args.options.get("debuginfod")! } : {}),
        s3,
        ...(order ? { order } : {}),
      },
    });
    if (args.flags.has("json")) {
      const doc = {
        core,
        machine: p.inventory.machine,
        foreign: p.foreign,
        executable: p.inventory.executable,
        command_line: p.inventory.commandLine,
        modules: toModules(p.modules).map((m, i) => {
          const r = p.modules[i]!;
          return { ...m, executable: r.executable, debug: r.debug, symbols: r.symbols, rejected: r.rejected, errors: r.errors };
        }),
        symbolication: symbolicationOf(p.modules),
      };
      io.stdout(JSON.stringify(doc, null, 2) + "\n");
    } else {
      io.stdout(printable(renderList(p, core)));
    }
    return EXIT.ok;
  } catch (e: unknown) {
    if (e instanceof NotElfError || e instanceof UnstripError) {
      io.stderr(`coresight-worker symbols list: ${core}: ${e.message}\n`);
      return EXIT.failed;
    }
    throw e;
  } finally {
    await fs.rm(workDir, { recursive: true, force: true });
  }
}

async function ids(argv: string[], io: SymbolsIo): Promise<number> {
  const args = parseArgs(argv, { flags: ["json"] });
  if (args.positionals.length === 0) throw new UsageError("symbols id: give at least one file");
  if (await missingInput(args.positionals, io)) return EXIT.noInput;
  let failed = false;
  const rows = [];
  for (const f of args.positionals) {
    try {
      const d = await describeElf(f);
      rows.push({ file: f, build_id: d.buildId, machine: d.machine, code: d.hasCode, dwarf: d.hasDebugInfo, symtab: d.hasSymtab });
    } catch (e: unknown) {
      failed = true;
      io.stderr(`${f}: ${e instanceof NotElfError ? "not an ELF file" : toError(e).message}\n`);
    }
  }
  if (args.flags.has("json")) io.stdout(JSON.stringify(rows, null, 2) + "\n");
  else {
    for (const r of rows) {
      const has = [r.code && "code", r.dwarf && "dwarf", r.symtab && "symtab"].filter(Boolean).join("+") || "nothing";
      io.stdout(`${r.build_id ?? "(no build-id)"}  ${r.machine.padEnd(8)} ${has.padEnd(18)} ${r.file}\n`);
    }
  }
  return failed ? EXIT.failed : EXIT.ok;
}

/** Runs `symbols` with explicit I/O and environment; returns the exit code. */
export async function symbolsCommand(argv: string[], deps: SymbolsDeps = {}): Promise<number> {
  const io = deps.io ?? processIo;
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help" || rest.includes("--help") || rest.includes("-h")) {
    io.stdout(HELP);
    return sub === undefined ? EXIT.usage : EXIT.ok;
  }
  switch (sub) {
    case "add":
      return add(rest, { ...deps, io });
    case "list":
      return list(rest, { ...deps, io });
    case "id":
      return ids(rest, io);
    default:
      throw new UsageError(`unknown subcommand ${JSON.stringify(sub)} (expected add, list or id)`);
  }
}

const command: Command = {
  name: "symbols",
  help: HELP,
  run: (argv) => symbolsCommand(argv),
};
export default command;
