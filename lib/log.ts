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

/**
 * Keys whose values are credentials at any depth, compared in lower case.
 * pino's redact paths above only reach fixed depths (`a.token`, not
 * `a.b.token`), so scrubDeep censors these names wherever they appear.
 */
const SECRET_KEY_NAMES = new Set([
  "token",
  "password",
  "secret",
  "authorization",
  "proxy-authorization",
  "cookie",
  "secretaccesskey",
  "secret_access_key",
  "accesskeyid",
  "access_key_id",
  "sessiontoken",
  "session_token",
]);

/** Beyond this depth a value is replaced, not written unscrubbed (and cycles end). */
const MAX_DEPTH = 10;

/** Errors already serialized and scrubbed by scrubDeep: the `err` serializer must not redo them. */
const scrubbedErrors = new WeakSet<object>();

/**
 * A copy of `value` with every string scrubbed and every secret key censored.
 * Errors become pino's serialized form (type, message, stack with causes),
 * scrubbed: the `err` serializer runs after `formatters.log`, so an error
 * passed through would print its message and stack, URLs and all.
 * Values with `toJSON` (Date, URL, Buffer) are scrubbed as JSON would print them.
 */
function scrubDeep(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return scrubSecrets(value);
  if (value === null || typeof value !== "object") return value;
  if (depth > MAX_DEPTH) return "[too deep]";
  if (scrubbedErrors.has(value)) return value;
  if (value instanceof Error) {
    const out = scrubDeep({ ...pino.stdSerializers.err(value) }, depth) as object;
    scrubbedErrors.add(out);
    return out;
  }
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === "function") return scrubDeep(toJSON.call(value), depth + 1);
  if (Array.isArray(value)) return value.map((v) => scrubDeep(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEY_NAMES.has(k.toLowerCase()) && v !== undefined && v !== null && v !== "" ? "REDACTED" : scrubDeep(v, depth + 1);
  }
  return out;
}

/** pino's default `err` serializer, skipping errors scrubDeep already serialized. */
function serializeErr(e: unknown): unknown {
  return typeof e === "object" && e !== null && scrubbedErrors.has(e) ? e : pino.stdSerializers.err(e as Error);
}

/**
 * The message pino would take from the merging object when none is given
 * (`log.error(err)`, `log.error({ err })`); it never passes through a
 * formatter, so the logMethod hook supplies it scrubbed.
 */
function implicitMessage(first: unknown): string | undefined {
  if (first instanceof Error) return first.message;
  if (typeof first !== "object" || first === null) return undefined;
  const o = first as { msg?: unknown; err?: { message?: unknown } };
  if (o.msg === undefined && o.err && typeof o.err.message === "string") return o.err.message;
  return undefined;
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
  const logger = pino(
    {
      level,
      base: opts.base ?? { pid: process.pid },
      redact: { paths: SECRET_KEYS, censor: "REDACTED" },
      timestamp: pino.stdTimeFunctions.epochTime,
      serializers: { err: serializeErr },
      formatters: {
        log: (obj) => scrubDeep(obj) as Record<string, unknown>,
        // The root's `base`; pino swaps this formatter out for children (see below).
        bindings: (bindings) => scrubDeep(bindings) as Record<string, unknown>,
      },
      hooks: {
        logMethod(args, method) {
          // The message and its format arguments (%s, %j, %o) never reach
          // formatters.log: scrub them here. The merging object (first
          // argument when it is an object) is left for formatters.log, so
          // pino still sees an Error there.
          const scrubbed: unknown[] = args.map((a, i) => (i === 0 && typeof a === "object" ? a : scrubDeep(a)));
          if (scrubbed.length === 1) {
            const implicit = implicitMessage(scrubbed[0]);
            if (implicit !== undefined) scrubbed.push(scrubSecrets(implicit));
          }
          method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
    },
    streams.length > 0 ? pino.multistream(streams) : pino.destination("/dev/null"),
  );
  // A child's bindings (logger.child({ url })) are rendered once at creation
  // and never pass through formatters.log, and pino resets
  // formatters.bindings for children: scrub them on the way in. Children
  // inherit this method from the root through their prototype.
  const child = logger.child;
  logger.child = function scrubbedChild(this: Logger, bindings, options) {
    return child.call(this, scrubDeep(bindings) as typeof bindings, options);
  } as typeof logger.child;
  return logger;
}
