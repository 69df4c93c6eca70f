/**
 * `coresight-worker signature explain`: why a crash got its signature.
 * Frame by frame, which rule kept or dropped each frame of the crash
 * thread, then the signature text and hash: the tool for an operator who
 * writes grouping rules (SIGNATURE_RULES) or wonders why two crashes share
 * or split a group. It reads a result (`analyze --json`, a stored document)
 * or analyzes a core as `analyze` does; `--rules FILE` tries a rules file
 * before it is deployed.
 */
import fs from "node:fs/promises";
import { ConfigError, loadConfig, signatureRules } from "../../lib/config.js";
import { explainResult } from "../../lib/gdb/explain.js";
import { compileGroupingRules } from "../../lib/gdb/groupingRules.js";
import type { FrameStep, SignatureExplanation } from "../../lib/gdb/signature.js";
import { ResultSchema, type Result, type Signature } from "../../lib/result.js";
import { EXIT, parseArgs, UsageError, type Command } from "../command.js";
import { analyzeWithOptions, ANALYZE_OPTIONS, processIo, type AnalyzeIo } from "./analyze.js";
import { oneLine, printable } from "./parse.js";

const HELP = `Usage: coresight-worker signature explain <result.json | core> [--rules FILE] [--json]
                                            [analyze's options for a core]

Shows how the crash thread's signature is made: each frame of the crash
thread, whether it is in the signature, and the rule that decided it, then
the signature text and hash. The rules, in the order they apply:

  above the crash frame     signal, abort, assert, C++ terminate, Rust and Go
                            panic machinery (or, for a signal another process
                            sent, libc's blocking call it found the thread in)
  skipped by skip[i]        the operator's noise rules (SIGNATURE_RULES)
  crash frame               the first frame left: always taken
  in-app / not in-app       the program's own frames are taken, system
                            libraries' are not (in_app[i] / not_in_app[i]
                            rules first); with no in-app frame at all, system
                            frames are kept
  thread start-up frame     start_thread, clone3, _start, runtime.goexit, ...
                            end the signature
  recursion                 a repeating cycle of frames counts once
  past the frame limit      at most max_frames (5) frames

<result.json> is what \`analyze --json\` prints or what the worker stores;
anything else is a core dump, analyzed as \`coresight-worker analyze\` does
(and with its options). A result's own signature was made with the rules
the analysis ran with: when the rules given here make another one, both are
printed.

Options:
  --rules FILE   grouping rules (JSON; see docs/api.md "Grouping rules")
                 instead of SIGNATURE_RULES; an invalid file is an error
                 naming the entry
  --json         print {crash_thread, steps: [{index, text, kept, reason}],
                 signature, result_signature} instead of the table
  --exe, --sysroot, --symbol-store, --debuginfod, --timeout, --gdb,
  --max-frames   for a core, as for \`analyze\`
  -h, --help     show this help

Examples:
  coresight-worker analyze core --json > result.json
  coresight-worker signature explain result.json
  coresight-worker signature explain result.json --rules ./signature-rules.json
  coresight-worker signature explain core.1234 --exe ./build/myapp --json | jq '.steps[] | select(.kept)'

Exit codes:
  0  explained
  1  the analysis failed, or the result has no crash thread
  2  usage error
  3  configuration error (a bad rules file, a bad variable)
  5  the input file is missing or unreadable
`;

/** Runs `signature <subcommand>` with explicit I/O; returns the exit code. */
export async function signatureCommand(argv: string[], io: AnalyzeIo = processIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === "--help" || sub === "-h") {
    io.stdout(HELP);
    return sub === undefined ? EXIT.usage : EXIT.ok;
  }
  if (sub !== "explain") throw new UsageError(`unknown subcommand ${JSON.stringify(sub)} (expected explain)`);
  const args = parseArgs(rest, { flags: ["json"], options: ["rules", ...ANALYZE_OPTIONS] });
  if (args.flags.has("help")) {
    io.stdout(HELP);
    return EXIT.ok;
  }
  if (args.positionals.length !== 1) throw new UsageError(args.positionals.length === 0 ? "missing <result.json | core>" : "expected one <result.json | core>");
  const input = args.positionals[0]!;
  const rulesFile = args.options.get("rules");
  const rulesData = rulesFile !== undefined ? signatureRulesOption(rulesFile) : loadConfig(io.env).signatureRules;
  const rules = compileGroupingRules(rulesData);

  let head: Buffer;
  try {
    const fh = await fs.open(input, "r");
    try {
      head = Buffer.alloc(64);
      const { bytesRead } = await fh.read(head, 0, 64, 0);
      head = head.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch (e: unknown) {
    io.stderr(printable(`coresight-worker signature: cannot read ${input}: ${e instanceof Error ? e.message : String(e)}`) + "\n");
    return EXIT.noInput;
  }
  let result: Result;
  if (/^\s*\{/.test(head.toString("latin1"))) {
    const parsed = ResultSchema.safeParse(JSON.parse(await fs.readFile(input, "utf8")) as unknown);
    if (!parsed.success) {
      io.stderr(`coresight-worker signature: ${input} is JSON but not a result (schema v1): ${parsed.error.issues[0]?.message ?? ""}\n`);
      return EXIT.failed;
    }
    result = parsed.data;
  } else {
    const done = await analyzeWithOptions(input, args.options, io, rules);
    if (typeof done === "number") return done;
    result = done.result;
  }
  const e = explainResult(result, rules);
  if (!e) {
    const why = result.status === "failed" ? `the analysis failed: ${result.error?.code ?? ""}: ${result.error?.message ?? ""}` : "the result has no crash thread";
    io.stderr(printable(`coresight-worker signature: ${why}`) + "\n");
    return EXIT.failed;
  }
  if (args.flags.has("json")) {
    io.stdout(JSON.stringify({ crash_thread: e.crash_thread, steps: e.steps, signature: e.signature, result_signature: result.signature }, null, 2) + "\n");
  } else {
    io.stdout(printable(renderExplanation(e, result.signature, rulesFile ?? (rulesData ? "SIGNATURE_RULES" : null))));
  }
  return EXIT.ok;
}

function signatureRulesOption(file: string) {
  try {
    return signatureRules(file);
  } catch (e: unknown) {
    // The same checks as SIGNATURE_RULES, said about the option.
    if (e instanceof ConfigError) throw new ConfigError("--rules", e.message.replace(/^SIGNATURE_RULES: /, ""));
    throw e;
  }
}

/** The table: one line per frame (index, kept or not, the frame as the signature reads it, the rule), then the signature. */
export function renderExplanation(e: SignatureExplanation & { crash_thread: number }, stored: Signature | null, rules: string | null): string {
  const width = Math.min(48, Math.max(5, ...e.steps.map((s) => s.text.length)));
  // A run of the same frame for the same reason (a deep recursion) is one row: #1-#255.
  const rows: Array<[string, string, string, string]> = [];
  for (let i = 0; i < e.steps.length; i++) {
    const s = e.steps[i]!;
    let j = i;
    while (j + 1 < e.steps.length && !s.kept && sameStep(e.steps[j + 1]!, s)) j++;
    const text = oneLine(s.text);
    const shown = text.length > width ? `${text.slice(0, width - 1)}…` : text;
    rows.push([j > i ? `#${s.index}-#${e.steps[j]!.index}` : `#${s.index}`, s.kept ? "yes" : "-", shown, `${s.reason}${j > i ? ` (${j - i + 1} frames)` : ""}`]);
    i = j;
  }
  const iw = Math.max(4, ...rows.map((r) => r[0].length));
  const lines = [
    `crash thread ${e.crash_thread}, rules: ${rules ? oneLine(rules) : "built-in (no SIGNATURE_RULES)"}`,
    `  ${"#".padEnd(iw)}  ${"kept".padEnd(4)}  ${"frame".padEnd(width)}  rule`,
    ...rows.map(([index, kept, frame, reason]) => `  ${index.padEnd(iw)}  ${kept.padEnd(4)}  ${frame.padEnd(width)}  ${reason}`),
  ];
  lines.push(e.signature ? `signature:   ${e.signature.hash}  ${oneLine(e.signature.text)}` : "signature:   none (no frame left)");
  if (stored && stored.hash !== e.signature?.hash) {
    lines.push(`in result:   ${stored.hash}  ${oneLine(stored.text)}  (made with other rules)`);
  }
  return lines.join("\n") + "\n";
}

function sameStep(a: FrameStep, b: FrameStep): boolean {
  return a.text === b.text && a.kept === b.kept && a.reason === b.reason;
}

const command: Command = {
  name: "signature",
  help: HELP,
  run: (argv) => signatureCommand(argv),
};
export default command;
