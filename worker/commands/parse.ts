/**
 * `coresight-worker parse`: analyze backtrace text someone already has (a
 * paste from a ticket, gdb output saved by hand) without a dump or gdb.
 * Same analysis as `analyze` (lib/gdb/summarize.ts), with the same grouping
 * rules (SIGNATURE_RULES), so the signature of a pasted backtrace matches
 * the one the worker stores for the dump.
 *
 * Memory: the default outputs come from a lean parse (summarizeSource): FILE
 * is read a line at a time, each thread keeps its shown frames and a digest,
 * and only the crash thread's block is read again and kept whole. On 19 MB of
 * text that is about 1.7-1.9x satyr's peak RSS instead of 3.5x
 * (bench/satyr.ts). `--full` needs every frame and parses the text whole.
 */
import { once } from "node:events";
import { ConfigError, DEFAULT_MAX_FRAMES, signatureRules } from "../../lib/config.js";
import { toError } from "../../lib/errors.js";
import { findCrashThread, SIGNAL_FRAMES } from "../../lib/gdb/crash.js";
import { compileGroupingRules, type GroupingRules } from "../../lib/gdb/groupingRules.js";
import { TOP_FRAMES } from "../../lib/gdb/quality.js";
import type { Frame, Thread } from "../../lib/result.js";
import { backtraceLineParser, parseBacktrace, type DeferredLocals } from "../../lib/gdb/parseBacktrace.js";
import { digestThread, summarize, type Summary, type ThreadDigest } from "../../lib/gdb/summarize.js";
import { bufferSource, fileSource, type TextSource } from "../../lib/gdb/textSource.js";
import { EXIT, parseArgs, type Command } from "../command.js";

/** Frames per thread other than the crash thread in the `parse --json` summary. */
export const SUMMARY_TOP_FRAMES = 3;

/**
 * Frames a lean parse parses per thread (ParseOptions.keepFrames: at least
 * that many, and that many other than signal handlers): what a thread's
 * digest reads (showsSignal, otherThreadScore) and the summary shows.
 */
export const LEAN_KEEP_FRAMES = Math.max(SIGNAL_FRAMES, TOP_FRAMES, SUMMARY_TOP_FRAMES);

const HELP = `Usage: coresight-worker parse [FILE|-] [--json [--full]] [--locals crash|all] [--max-frames N]

Reads gdb backtrace text (bt, bt full, thread apply all bt [full], with or
without gdb's core-load banner) from FILE, or from stdin when FILE is "-" or
absent, and prints the analysis: signal, crash thread, crash frame, the crash
thread's top frames, signature (text and hash) and symbol quality.

Options:
  --json       print a JSON summary {signal, crash_thread, thread_count,
               threads, crash_frame, signature, quality, executable,
               command_line}: the crash thread with all its frames, every
               other thread with its top ${SUMMARY_TOP_FRAMES} frames and its frame_count
  --full       with --json: every thread with all its frames, the same
               fields as an analysis result (written thread by thread;
               this holds the whole text: without it FILE is read a line
               at a time and only the threads' shown frames are kept)
  --locals crash|all
               bt full locals kept on the crash thread's frames only
               (crash, the default: the others' are dropped while parsing),
               or on every frame (all)
  --max-frames N
               frames kept per thread (default ${DEFAULT_MAX_FRAMES}, as GDB_MAX_FRAMES
               for analyze); a thread cut says frames_truncated
  -h, --help   show this help

The signature follows SIGNATURE_RULES (the grouping rules file the worker
uses), so a pasted backtrace groups as the worker's analysis of its dump.

Examples:
  coresight-worker parse crash.txt
  gdb -batch -ex 'thread apply all bt full' ./app core | coresight-worker parse --json
  coresight-worker parse crash.txt --json --full --locals all > everything.json
  pbpaste | coresight-worker parse - --json | jq .signature.hash

Exit codes:
  0  parsed (even if no frame was found: see "threads: 0")
  2  usage error (unknown option, more than one FILE)
  3  SIGNATURE_RULES names a missing or invalid rules file
  5  FILE missing or unreadable
`;

/** Streams the command writes to; tests pass their own. */
export interface ParseIo {
  /** May return a promise: the JSON writer waits for it before the next chunk (stdout's backpressure). */
  stdout: (s: string) => void | Promise<void>;
  stderr: (s: string) => void;
  /** All of stdin: bytes (decoded as UTF-8), or text. */
  stdin: () => Promise<Buffer | string>;
  /** Where SIGNATURE_RULES is read from; default none. */
  env?: NodeJS.ProcessEnv;
}

const processIo: ParseIo = {
  // A pipe to a slow reader fills: wait for "drain" (once() rejects on an error such as EPIPE) so chunks are not queued in memory.
  stdout: (s) => (process.stdout.write(s) ? undefined : once(process.stdout, "drain").then(() => undefined)),
  stderr: (s) => void process.stderr.write(s),
  stdin: readStdin,
  env: process.env,
};

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The analysis of backtrace text, as `parse --json --full` prints it; each
 * thread keeps at most `maxFrames` frames, as gdb's own limit does for
 * analyze. With `locals: "crash"` only the crash thread's frames carry locals:
 * the parser keeps them as offsets into the text until the crash thread is
 * known, so the others never become strings.
 */
export function parseText(text: string, maxFrames = DEFAULT_MAX_FRAMES, locals: "crash" | "all" = "all", rules?: GroupingRules): Summary {
  const { deferredLocals, ...bt } = parseBacktrace(text, { locals: locals === "crash" ? "deferred" : "all" });
  const threads = bt.threads.map((t) => (t.frames.length > maxFrames ? { ...t, frames: t.frames.slice(0, maxFrames), frames_truncated: true } : t));
  const summary = summarize({ ...bt, threads }, rules ? { rules } : {});
  const crash = summary.threads.find((t) => t.crashed);
  if (crash) deferredLocals?.fill(crash);
  return summary;
}

/** A summary of a lean parse: the crash thread whole, the others' first frames only (frame_count has how many they have). */
export interface LeanSummary {
  summary: Summary;
  /** A thread's frames as the whole parse would keep them (at most maxFrames). */
  frameCount: (t: Thread) => number;
}

/**
 * What `parseText` gives for the default `parse` outputs (the human one and
 * the `--json` summary), without holding the text or every frame: a lean
 * parse of the text read a line at a time keeps each thread's first frames
 * (LEAN_KEEP_FRAMES) and where each thread block starts; then the crash
 * thread's block is read again and parsed whole, with its locals. A block's
 * frames depend on nothing before it, so they are the ones the whole parse
 * gives; test/worker/commands/parseLean.test.ts checks the outputs equal
 * parseText's on the corpus and on generated text.
 */
export async function summarizeSource(source: TextSource, maxFrames = DEFAULT_MAX_FRAMES, locals: "crash" | "all" = "crash", rules?: GroupingRules): Promise<LeanSummary> {
  // Each thread block, when it ends: the digest of its frames (as cut to maxFrames), then only the frames a summary shows.
  const digests = new Map<number, ThreadDigest>();
  const parser = backtraceLineParser({
    locals: locals === "all" ? "all" : "none",
    keepFrames: LEAN_KEEP_FRAMES,
    onBlockEnd: (t) => {
      digests.set(t.number, digestThread(t.frames.slice(0, maxFrames)));
      t.frames = t.frames.slice(0, SUMMARY_TOP_FRAMES);
    },
  });
  const size = await source.lines((line, offset) => parser.line(line, offset));
  const { frameCounts, blocks, ...bt } = parser.finish();
  if (!blocks || blocks.length === 0) {
    // No thread header: the text is one thread (its longest frame sequence), kept whole anyway.
    const summary = parseText(await source.all(), maxFrames, locals, rules);
    return { summary, frameCount: (t) => t.frames.length };
  }
  const total = (t: Thread) => frameCounts?.get(t.number) ?? t.frames.length;
  const cut = (t: Thread) => (total(t) > maxFrames ? { ...t, frames: t.frames.slice(0, maxFrames), frames_truncated: true } : t);
  let threads = bt.threads.map(cut);
  // The choice summarize makes below, from the same digests.
  const crash = findCrashThread({ ...bt, threads }, { showsSignal: (t) => digests.get(t.number)?.showsSignal ?? false });
  const at = blocks.findIndex((b) => b.number === crash);
  let deferred: DeferredLocals | undefined;
  if (at !== -1) {
    // The crash thread whole, its locals as parseText gives them (set after summarize with "crash", on the frames with "all").
    const text = await source.text(blocks[at]!.offset, blocks[at + 1]?.offset ?? size);
    const block = parseBacktrace(text, { locals: locals === "all" ? "all" : "deferred" });
    const whole = block.threads[0];
    if (whole?.number === crash) {
      threads = threads.map((t) => (t.number === crash ? cut(whole) : t));
      deferred = block.deferredLocals;
    }
  }
  const summary = summarize({ ...bt, threads }, { digests, ...(rules ? { rules } : {}) });
  const crashed = summary.threads.find((t) => t.crashed);
  if (crashed) deferred?.fill(crashed);
  return { summary, frameCount: (t) => (t.crashed ? t.frames.length : Math.min(total(t), maxFrames)) };
}

/** The default `parse --json` document: the crash thread whole, the other threads' top frames, the thread count. */
export function summaryDocument(s: Summary, frameCount: (t: Thread) => number = (t) => t.frames.length) {
  return {
    signal: s.signal,
    crash_thread: s.crash_thread,
    thread_count: s.threads.length,
    threads: s.threads.map((t) => ({ ...t, frames: t.crashed ? t.frames : t.frames.slice(0, SUMMARY_TOP_FRAMES), frame_count: frameCount(t) })),
    crash_frame: s.crash_frame,
    signature: s.signature,
    quality: s.quality,
    executable: s.executable,
    command_line: s.command_line,
  };
}

/**
 * Writes exactly `JSON.stringify(doc, null, 2) + "\n"`, but built a
 * top-level value or an array element (a thread) at a time and handed to
 * `write` in chunks of about 64 KiB, each awaited: no string ever holds the
 * whole document, and a slow reader holds back the writer.
 */
export async function writeJson(doc: Record<string, unknown>, write: (s: string) => void | Promise<void>): Promise<void> {
  let buf = "{\n";
  const put = async (s: string) => {
    buf += s;
    if (buf.length >= 65536) {
      const chunk = buf;
      buf = "";
      await write(chunk);
    }
  };
  const keys = Object.keys(doc).filter((k) => doc[k] !== undefined && typeof doc[k] !== "function");
  for (const [i, k] of keys.entries()) {
    const v = doc[k];
    const sep = i < keys.length - 1 ? ",\n" : "\n";
    if (Array.isArray(v) && v.length > 0) {
      await put(`  ${JSON.stringify(k)}: [\n`);
      for (const [j, e] of (v as unknown[]).entries()) await put(`    ${(JSON.stringify(e, null, 2) ?? "null").replaceAll("\n", "\n    ")}${j < v.length - 1 ? ",\n" : "\n"}`);
      await put(`  ]${sep}`);
    } else {
      await put(`  ${JSON.stringify(k)}: ${JSON.stringify(v, null, 2).replaceAll("\n", "\n  ")}${sep}`);
    }
  }
  await write(buf + "}\n");
}

/** Runs `parse` with explicit I/O; returns the exit code. */
export async function parseCommand(argv: string[], io: ParseIo = processIo): Promise<number> {
  const args = parseArgs(argv, { flags: ["json", "full"], options: ["max-frames", "locals"] });
  if (args.flags.has("help")) {
    await io.stdout(HELP);
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
  const locals = args.options.get("locals") ?? "crash";
  if (locals !== "crash" && locals !== "all") {
    io.stderr(`coresight-worker parse: --locals must be crash or all, got ${JSON.stringify(locals)}\n(see coresight-worker parse --help)\n`);
    return EXIT.usage;
  }
  if (args.flags.has("full") && !args.flags.has("json")) {
    io.stderr("coresight-worker parse: --full is an option of --json\n(see coresight-worker parse --help)\n");
    return EXIT.usage;
  }
  let rules: GroupingRules | undefined;
  try {
    const data = signatureRules(io.env?.SIGNATURE_RULES);
    if (data) rules = compileGroupingRules(data);
  } catch (e: unknown) {
    if (!(e instanceof ConfigError)) throw e;
    io.stderr(`coresight-worker parse: ${e.message}\n`);
    return EXIT.config;
  }
  const file = args.positionals[0] ?? "-";
  let source: TextSource;
  try {
    if (file === "-") {
      const input = await io.stdin();
      source = bufferSource(typeof input === "string" ? Buffer.from(input, "utf8") : input);
    } else {
      source = await fileSource(file);
    }
  } catch (e: unknown) {
    // Read `code` off the raw value: under jest's VM realms fs errors are not `instanceof Error`.
    const code = typeof e === "object" && e !== null ? (e as { code?: unknown }).code : undefined;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : code === "EACCES" ? "permission denied" : toError(e).message;
    io.stderr(`coresight-worker parse: cannot read ${file}: ${why}\n`);
    return EXIT.noInput;
  }
  try {
    if (args.flags.has("full")) {
      // Every thread with all its frames: the whole text, parsed whole.
      const summary = parseText(await source.all(), maxFrames, locals, rules);
      await writeJson({ ...summary }, io.stdout);
    } else {
      const { summary, frameCount } = await summarizeSource(source, maxFrames, locals, rules);
      if (args.flags.has("json")) await writeJson(summaryDocument(summary, frameCount), io.stdout);
      else await io.stdout(printable(renderSummary(summary)));
    }
  } finally {
    await source.close();
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
