/** Shared pieces for the sink tests: a valid document, a capturing logger, a recording sleep. */
import { Writable } from "node:stream";
import { pino, type Logger } from "pino";
import { analysisIdOf, eventContext, parseEvent } from "../../../lib/events.js";
import { SCHEMA_VERSION, type Result } from "../../../lib/result.js";
import { resultDocument, type ResultDocument } from "../../../lib/results/document.js";

export const AGENT_TOKEN = "agent-token-kULT1AKXMu4xxnPNo5fSCW7J5LX";

export function sampleEvent(fileName = "core.app.1.node7.1765567205") {
  return parseEvent(
    JSON.stringify({
      specversion: "1.0",
      type: "coredog.coredump.uploaded",
      source: "coredog-agent",
      id: "coredog-1765567205-4242",
      token: AGENT_TOKEN,
      data: { coredump_id: 0, file_url: `http://b.cos.example.com/coredog/${fileName}?X-Amz-Signature=abc`, file_name: fileName, md5: "", pod_name: "web-1" },
    }),
  );
}

export function completedResult(): Result {
  return {
    schema_version: SCHEMA_VERSION,
    status: "completed",
    signal: { name: "SIGSEGV", number: 11, code: "SEGV_MAPERR", fault_address: "0x0", description: "Segmentation fault" },
    crash_thread: 1,
    threads: [
      {
        number: 1,
        lwp: 4242,
        thread_id: null,
        name: null,
        crashed: true,
        frames: [{ index: 0, address: null, function: "crash", args: "", file: "crash.c", line: 7, library: null, inline: false, signal_handler: false }],
        backtrace_stopped: null,
      },
    ],
    crash_frame: { index: 0, address: null, function: "crash", args: "", file: "crash.c", line: 7, library: null, inline: false, signal_handler: false },
    signature: { text: "crash", hash: "0123456789abcdef", frames: ["crash"] },
    quality: 1,
    shared_libraries: [],
    abort_message: null,
    gdb: { version: "13.1", exit_code: 0, duration_ms: 10, truncated: false },
    core: { size: 1024, executable: "/app/crash", command_line: "/app/crash" },
  };
}

/** A valid document and its analysis_id. */
export function sampleDoc(fileName?: string): { id: string; doc: ResultDocument } {
  const ev = sampleEvent(fileName);
  const id = analysisIdOf(ev);
  return { id, doc: resultDocument(completedResult(), eventContext(ev), { analysis_id: id, attempt: 1, worker: "test:1" }) };
}

/** A pino logger whose JSON lines land in `lines`. */
export function captureLogger(): { logger: Logger; lines: () => Array<Record<string, unknown>>; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString("utf8"));
      cb();
    },
  });
  const logger = pino({ level: "debug" }, stream);
  const text = () => chunks.join("");
  return {
    logger,
    text,
    lines: () =>
      text()
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** A sleep that records the delays it was asked for and returns at once. */
export function recordingSleep(): { sleep: (ms: number) => Promise<void>; delays: number[] } {
  const delays: number[] = [];
  return { delays, sleep: async (ms: number) => void delays.push(ms) };
}
