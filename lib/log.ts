/**
 * Logging: pino JSON lines to LOG_FILE (operators `tail -f worker.log`) and to
 * stdout, compact and readable when stdout is a TTY. Secrets never reach
 * either: known secret keys are censored by pino's redaction, and every string
 * value is scrubbed of presigned-URL signatures and credentials.
 */
import fs from "node:fs";
import path from "node:path";
import { Writable } from "node:stream";
import { pino, type Logger, type DestinationStream } from "pino";

export type { Logger };

const SECRET_KEYS = [
  "token",
  "password",
  "secret",
  "authorization",
  "Authorization",
  "secretAccessKey",
  "accessKeyId",
  "*.token",
  "*.password",
  "*.secret",
  "*.authorization",
  "*.Authorization",
  "*.secretAccessKey",
  "*.headers.authorization",
  "*.headers.Authorization",
];

/** Query parameters whose values are credentials in presigned URLs. */
const SECRET_PARAMS = /([?&](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|OSSAccessKeyId|q-signature|q-ak|sign|token|access_token)=)[^&#\s"']*/gi;
const BEARER = /(Bearer\s+)[A-Za-z0-9._~+/=-]+/g;

/** Removes credentials from any string (URLs with presigned signatures, bearer headers). */
export function scrubSecrets(s: string): string {
  return s.replace(SECRET_PARAMS, "$1REDACTED").replace(BEARER, "$1REDACTED");
}

function scrubDeep(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return scrubSecrets(value);
  if (depth > 6 || value === null || typeof value !== "object") return value;
  if (value instanceof Error) return value;
  if (Array.isArray(value)) return value.map((v) => scrubDeep(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrubDeep(v, depth + 1);
  return out;
}

/** Compact one-line rendering of a pino JSON line for humans on a TTY. */
function prettyLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { time, level, msg, pid: _pid, hostname: _host, ...rest } = o;
  const names: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO ", 40: "WARN ", 50: "ERROR", 60: "FATAL" };
  const t = typeof time === "number" ? new Date(time).toISOString().slice(11, 23) : "";
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  return `${t} ${names[Number(level)] ?? level} ${String(msg ?? "")}${fields ? "  " + fields : ""}\n`;
}

function prettyStream(out: NodeJS.WriteStream): DestinationStream {
  let buffer = "";
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      buffer += chunk.toString("utf8");
      let nl: number;
      while ((nl = buffer.indexOf("\n")) !== -1) {
        out.write(prettyLine(buffer.slice(0, nl)));
        buffer = buffer.slice(nl + 1);
      }
      cb();
    },
  });
}

export interface LoggerOptions {
  level?: string;
  /** JSON log file; "" or undefined: none. */
  file?: string;
  /** Also write to stdout (pretty on a TTY). Default true. */
  stdout?: boolean;
  /** Extra destination (tests capture lines here). */
  destination?: DestinationStream;
  base?: Record<string, unknown>;
}

/** Builds the process logger. Synchronous file writes so a crash loses no line. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const streams: pino.StreamEntry[] = [];
  if (opts.file) {
    fs.mkdirSync(path.dirname(path.resolve(opts.file)), { recursive: true });
    streams.push({ stream: pino.destination({ dest: opts.file, sync: true, mkdir: true }) });
  }
  if (opts.stdout ?? true) {
    streams.push({ stream: process.stdout.isTTY ? prettyStream(process.stdout) : pino.destination({ dest: 1, sync: true }) });
  }
  if (opts.destination) streams.push({ stream: opts.destination });
  const level = opts.level ?? "info";
  for (const s of streams) s.level = level as pino.Level;
  return pino(
    {
      level,
      base: opts.base ?? { pid: process.pid },
      redact: { paths: SECRET_KEYS, censor: "REDACTED" },
      timestamp: pino.stdTimeFunctions.epochTime,
      formatters: {
        log: (obj) => scrubDeep(obj) as Record<string, unknown>,
      },
      hooks: {
        logMethod(args, method) {
          // Scrub the message string too (it may quote a URL).
          const scrubbed = args.map((a) => (typeof a === "string" ? scrubSecrets(a) : a));
          method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
    },
    streams.length > 0 ? pino.multistream(streams) : pino.destination("/dev/null"),
  );
}
