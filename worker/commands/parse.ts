/**
 * `coresight-worker parse`: analyze backtrace text someone already has (a
 * paste from a ticket, gdb output saved by hand) without a dump or gdb.
 * Same analysis as `analyze` (lib/gdb/summarize.ts), so the signature of a
 * pasted backtrace matches the one the worker stores for the dump.
 */
import { readFile } from "node:fs/promises";
import { DEFAULT_MAX_FRAMES } from "../../lib/config.js";
import { toError } from "../../lib/errors.js";
import type { Frame } from "../../lib/result.js";
import { parseBacktrace } from "../../lib/gdb/parseBacktrace.js";
import { summarize, type Summary } from "../../lib/gdb/summarize.js";
import { EXIT, parseArgs, type Command } from "../command.js";

const HELP = `Usage: coresight-worker parse [FILE|-] [--json] [--max-frames N]

Reads gdb backtrace text (bt, bt full, thread apply all bt [full], with or
without gdb's core-load banner) from FILE, or from stdin when FILE is "-" or
absent, and prints the analysis: signal, crash thread, crash frame, the crash
thread's top frames, signature (text and hash) and symbol quality.

Options:
  --json       print a JSON object {signal, crash_thread, crash_frame,
               signature, quality, threads, executable, command_line}
               (the same fields as an analysis result)
  --max-frames N
               frames kept per thread (default ${DEFAULT_MAX_FRAMES}, as GDB_MAX_FRAMES
               for analyze); a thread cut says frames_truncated
  -h, --help   show this help

Examples:
  coresight-worker parse crash.txt
  gdb -batch -ex 'thread apply all bt full' ./app core | coresight-worker parse --json
  pbpaste | coresight-worker parse - --json | jq .signature.hash

Exit codes:
  0  parsed (even if no frame was found: see "threads: 0")
  2  usage error (unknown option, more than one FILE)
  5  FILE missing or unreadable
`;

/** Streams the command writes to; tests pass their own. */
export interface ParseIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  stdin: () => Promise<string>;
}

const processIo: ParseIo = {
  stdout: (s) => void process.stdout.write(s),
  stderr: (s) => void process.stderr.write(s),
  stdin: readStdin,
};

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** The JSON document `parse --json` prints; each thread keeps at most `maxFrames` frames, as gdb's own limit does for analyze. */
export function parseText(text: string, maxFrames = DEFAULT_MAX_FRAMES): Summary {
  const bt = parseBacktrace(text);
  const threads = bt.threads.map((t) => (t.frames.length > maxFrames ? { ...t, frames: t.frames.slice(0, maxFrames), frames_truncated: true } : t));
  return summarize({ ...bt, threads });
}

/** Runs `parse` with explicit I/O; returns the exit code. */
export async function parseCommand(argv: string[], io: ParseIo = processIo): Promise<number> {
  const args = parseArgs(argv, { flags: ["json"], options: ["max-frames"] });
  if (args.flags.has("help")) {
    io.stdout(HELP);
    return EXIT.ok;
  }
  if (args.positionals.length > 1) {
    io.stderr(`coresight-worker parse: expected at most one FILE, got ${args.positionals.length}\n(see coresight-worker parse --help)\n`);
    return EXIT.usage;
  }
  let maxFrames = DEFAULT_MAX_FRAMES;
  const maxFramesArg = args.options.get("max-frames");
  if (maxFramesArg !== undefined) {
    const n = Number(maxFramesArg);
    if (!Number.isInteger(n) || n < 1) {
      io.stderr(`coresight-worker parse: --max-frames must be a positive integer, got ${JSON.stringify(maxFramesArg)}\n(see coresight-worker parse --help)\n`);
      return EXIT.usage;
    }
    maxFrames = n;
  }
  const file = args.positionals[0] ?? "-";
  let text: string;
  try {
    text = file === "-" ? await io.stdin() : await readFile(file, "utf8");
  } catch (e: unknown) {
    // Read `code` off the raw value: under jest's VM realms fs errors are not `instanceof Error`.
    const code = typeof e === "object" && e !== null ? (e as { code?: unknown }).code : undefined;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : code === "EACCES" ? "permission denied" : toError(e).message;
    io.stderr(`coresight-worker parse: cannot read ${file}: ${why}\n`);
    return EXIT.noInput;
  }
  const summary = parseText(text, maxFrames);
  if (args.flags.has("json")) {
    io.stdout(JSON.stringify(summary, null, 2) + "\n");
  } else {
    io.stdout(printable(renderSummary(summary)));
  }
  return EXIT.ok;
}

function where(f: Frame): string {
  if (f.file) return f.line !== null ? `${f.file}:${f.line}` : f.file;
  if (f.library) return f.library;
  return f.address ?? "";
}

function frameLabel(f: Frame): string {
  if (f.signal_handler) return "<signal handler called>";
  return f.function ?? "??";
}

/**
 * Human output is shown on a terminal, and function names, paths, thread
 * names and messages come from the crashed program: its control characters
 * (ESC sequences that move the cursor, retitle the window or hide text, a CR
 * that overwrites the line, bidi overrides that reorder it) are shown as
 * visible escapes instead of being interpreted. Newlines and tabs stay: the
 * renderers lay out lines with them. JSON output needs none of this.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const n = c.codePointAt(0)!;
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, "0")}` : `\\u${n.toString(16).padStart(4, "0")}`;
  });
}

/**
 * A value that must stay on one line of the human output: the crashed
 * process's command line (its argv, which anyone who can start a process
 * controls) and paths. A newline, CR or tab in it is shown as `\n`, `\r`,
 * `\t` (and a backslash as `\\`, so the escape cannot be faked), never
 * laid out: it cannot make a line that looks like the worker's own
 * (`signal: ...`). The JSON keeps the value as it was.
 */
export function oneLine(value: string): string {
  return value.replace(/[\\\n\r\t]/g, (c) => (c === "\\" ? "\\\\" : c === "\n" ? "\\n" : c === "\r" ? "\\r" : "\\t"));
}

/** The human summary, one fact per line. */
export function renderSummary(s: Summary): string {
  const lines: string[] = [];
  if (s.executable) lines.push(`executable:   ${oneLine(s.executable)}`);
  if (s.signal) {
    const code = s.signal.code ? ` (${s.signal.code})` : "";
    lines.push(`signal:       ${s.signal.name ?? "?"}${code}${s.signal.description ? ` — ${s.signal.description}` : ""}`);
  } else {
    lines.push('signal:       unknown (no "Program terminated with signal" line)');
  }
  const crash = s.threads.find((t) => t.crashed);
  if (s.crash_thread !== null) {
    const lwp = crash?.lwp != null ? ` (LWP ${crash.lwp})` : "";
    const name = crash?.name ? ` "${crash.name}"` : "";
    lines.push(`crash thread: ${s.crash_thread}${lwp}${name}`);
  } else {
    lines.push("crash thread: none (no frames found)");
  }
  if (s.crash_frame) {
    const w = where(s.crash_frame);
    lines.push(`crash frame:  #${s.crash_frame.index} ${frameLabel(s.crash_frame)}${w ? ` at ${w}` : ""}`);
  }
  if (crash && crash.frames.length > 0) {
    // Start at the crash frame: the raise/abort/panic frames above it are the same in every crash.
    const from = Math.max(0, s.crash_frame ? crash.frames.findIndex((f) => f.index === s.crash_frame!.index) : 0);
    lines.push("top frames:");
    const what = s.signal?.sender?.kind === "process" ? "libc's blocking call the signal found the thread in" : "signal/abort/panic machinery";
    if (from > 0) lines.push(`    (${from} frame${from === 1 ? "" : "s"} of ${what} above, not shown)`);
    const shown = crash.frames.slice(from, from + 10);
    for (const f of shown) {
      const w = where(f);
      const mark = s.crash_frame && f.index === s.crash_frame.index ? "→" : " ";
      lines.push(`  ${mark} #${String(f.index).padEnd(3)} ${frameLabel(f)}${w ? `  ${w}` : ""}`);
    }
    const rest = crash.frames.length - from - shown.length;
    if (rest > 0) lines.push(`    ... ${rest} more`);
    if (crash.frames_truncated) lines.push(`    (the frame limit cut this thread at ${crash.frames.length} frames: it has more)`);
    if (crash.backtrace_stopped) lines.push(`    backtrace stopped: ${crash.backtrace_stopped}`);
  }
  if (s.signature) lines.push(`signature:    ${s.signature.hash}  ${s.signature.text}`);
  lines.push(`quality:      ${s.quality.toFixed(2)}`);
  lines.push(`threads:      ${s.threads.length}`);
  return lines.join("\n") + "\n";
}

const command: Command = {
  name: "parse",
  help: HELP,
  run: (argv) => parseCommand(argv),
};
export default command;
