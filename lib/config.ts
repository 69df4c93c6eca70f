/**
 * The only module that reads `process.env`. A zod schema holds the defaults;
 * `loadConfig(env)` returns a frozen object, and a bad value's error names the
 * variable and the value. Every other module takes what it needs as arguments.
 */
import os from "node:os";
import fs from "node:fs";
import path from "node:path";
import * as z from "zod";

// zod compiles each object schema to a function (new Function) at its first
// parse: ~10 ms for the configuration schema alone, paid on every start of a
// one-shot command, for parses that each take microseconds either way. Off,
// for every schema of the process (the configuration is loaded first by every
// command), and no code is generated at run time.
z.config({ jitless: true });
import { GroupingRulesSchema, parseGroupingRules, type GroupingRulesData } from "./gdb/groupingRules.js";

export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = "ConfigError";
    this.variable = variable;
  }
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** MAX_DUMP_BYTES's default, also the limit of a library caller that passes none. */
export const DEFAULT_MAX_DUMP_BYTES = 64 * GiB;
/** Frames per thread gdb prints (GDB_MAX_FRAMES) and `parse` keeps. */
export const DEFAULT_MAX_FRAMES = 256;

function boolean(name: string, fallback: boolean) {
  return (raw: string | undefined): boolean => {
    if (raw === undefined || raw === "") return fallback;
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    throw new ConfigError(name, `expected true or false, got ${JSON.stringify(raw)}`);
  };
}

/**
 * Plain decimal digits only: `Number()` alone would take " " as 0 (turning the
 * probes off), "0x10" as 16 and "1e3" as 1000, none of which an operator means.
 */
function integer(name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER) {
  return (raw: string | undefined): number => {
    if (raw === undefined || raw === "") return fallback;
    const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
      throw new ConfigError(name, `expected an integer ${range}, got ${JSON.stringify(raw)}`);
    }
    return n;
  };
}

/** A JetStream KV bucket name: letters, digits, `-` and `_` only. */
function bucketName(name: string, fallback: string) {
  return (raw: string | undefined): string => {
    if (raw === undefined || raw === "") return fallback;
    if (!/^[A-Za-z0-9_-]+$/.test(raw)) throw new ConfigError(name, `expected a bucket name of letters, digits, - and _, got ${JSON.stringify(raw)}`);
    return raw;
  };
}

function list(raw: string | undefined): string[] {
  return (raw ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

function url(name: string) {
  return (raw: string | undefined): string | undefined => {
    if (raw === undefined || raw === "") return undefined;
    let parsed: URL;
    try {
      parsed = new URL(raw);
    } catch {
      throw new ConfigError(name, `not a valid URL: ${JSON.stringify(raw)}`);
    }
    // "minio:9000" parses as a URL with the scheme "minio:"; only HTTP(S) endpoints work here.
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
      throw new ConfigError(name, `expected an http:// or https:// URL, got ${JSON.stringify(raw)}`);
    }
    return parsed.toString().replace(/\/$/, "");
  };
}

function durationList(name: string, fallback: number[]) {
  return (raw: string | undefined): number[] => {
    if (raw === undefined || raw === "") return fallback;
    const items = list(raw);
    if (items.length === 0) {
      throw new ConfigError(name, `expected comma-separated milliseconds, got ${JSON.stringify(raw)}`);
    }
    return items.map((item) => {
      const n = /^\d+$/.test(item) ? Number(item) : NaN;
      if (!Number.isSafeInteger(n)) {
        throw new ConfigError(name, `expected comma-separated milliseconds, got ${JSON.stringify(raw)}`);
      }
      return n;
    });
  };
}

/**
 * The CPUs the cgroup lets this process use, from the cgroup v2 `cpu.max`
 * ("<quota> <period>" or "max <period>") or the v1 `cpu.cfs_quota_us` and
 * `cpu.cfs_period_us` (quota -1 = none): WORKER_CONCURRENCY's default. A
 * Kubernetes CPU limit becomes the quota, while `os.availableParallelism()`
 * still counts the node's CPUs: a pod limited to 2 CPUs on a 64-CPU node must
 * not run 64 gdb at once. Rounded down (a job is a CPU-bound gdb; half a CPU
 * gives no job of its own), at least 1, at most `cpus`. Pure: the files'
 * contents come in as strings (undefined when the file is absent).
 */
export function concurrencyFromCgroup(files: { cpuMax?: string; cfsQuotaUs?: string; cfsPeriodUs?: string }, cpus: number): number {
  const cap = Math.max(1, Math.floor(cpus));
  let quota = NaN;
  let period = NaN;
  const v2 = files.cpuMax?.trim().split(/\s+/);
  if (v2 && v2.length >= 1 && v2[0] !== "") {
    if (v2[0] === "max") return cap;
    quota = Number(v2[0]);
    period = Number(v2[1] ?? "100000");
  } else if (files.cfsQuotaUs !== undefined) {
    quota = Number(files.cfsQuotaUs.trim());
    period = Number((files.cfsPeriodUs ?? "100000").trim());
    if (quota < 0) return cap;
  }
  if (!Number.isFinite(quota) || !Number.isFinite(period) || quota <= 0 || period <= 0) return cap;
  return Math.min(cap, Math.max(1, Math.floor(quota / period)));
}

/** Reads the cgroup CPU limit files under `root` (absent or unreadable files are undefined). */
export function readCgroupCpuFiles(root = "/sys/fs/cgroup"): { cpuMax?: string; cfsQuotaUs?: string; cfsPeriodUs?: string } {
  const read = (...parts: string[]): string | undefined => {
    try {
      return fs.readFileSync(path.join(root, ...parts), "utf8");
    } catch {
      return undefined;
    }
  };
  const cpuMax = read("cpu.max");
  if (cpuMax !== undefined) return { cpuMax };
  // cgroup v1: the cpu controller's own hierarchy (a container sees its own cgroup there).
  for (const dir of ["cpu", "cpu,cpuacct"]) {
    const cfsQuotaUs = read(dir, "cpu.cfs_quota_us");
    if (cfsQuotaUs !== undefined) return { cfsQuotaUs, cfsPeriodUs: read(dir, "cpu.cfs_period_us") };
  }
  return {};
}

/** WORKER_CONCURRENCY's default on this machine: the cgroup CPU quota, capped by the CPU count. */
export function defaultConcurrency(cgroupRoot = "/sys/fs/cgroup"): number {
  return concurrencyFromCgroup(readCgroupCpuFiles(cgroupRoot), os.availableParallelism());
}

const SINKS = ["http", "file", "nats"] as const;
export type SinkName = (typeof SINKS)[number];

const ConfigSchema = z.object({
  nats: z.object({
    url: z.string(),
    credsFile: z.string().optional(),
    token: z.string().optional(),
    tlsCaFile: z.string().optional(),
    tlsCertFile: z.string().optional(),
    tlsKeyFile: z.string().optional(),
    stream: z.string().min(1),
    subject: z.string().min(1),
    createStream: z.boolean(),
    resultStream: z.string().min(1),
    consumer: z.string().min(1),
    ackWaitMs: z.number().int().positive(),
    maxDeliver: z.number().int().positive(),
    /** nak delays per attempt; the last one repeats. */
    backoffMs: z.array(z.number().int().nonnegative()).min(1),
  }),
  concurrency: z.number().int().positive(),
  workDir: z.string(),
  maxDumpBytes: z.number().int().positive(),
  download: z.object({
    /** Whole-download deadline; 0 = none. */
    timeoutMs: z.number().int().nonnegative(),
    /** Minimum rate over `rateWindowMs`; 0 = off. */
    minBytesPerSecond: z.number().int().nonnegative(),
    rateWindowMs: z.number().int().positive(),
  }),
  gdb: z.object({
    path: z.string(),
    multiarchPath: z.string(),
    timeoutMs: z.number().int().positive(),
    maxOutputBytes: z.number().int().positive(),
    maxFrames: z.number().int().positive(),
    /** GDB_INDEX_CACHE*: null when off. */
    indexCache: z.object({ dir: z.string(), maxBytes: z.number().int().positive() }).nullable(),
    /** GDB_PRESTART: the worker keeps one gdb started, waiting for the next job (lib/gdb/launch.ts). */
    prestart: z.boolean(),
  }),
  s3: z.object({
    endpoint: z.string().optional(),
    region: z.string(),
    accessKeyId: z.string().optional(),
    secretAccessKey: z.string().optional(),
    forcePathStyle: z.boolean(),
  }),
  allowedDumpHosts: z.array(z.string()),
  allowedFileRoots: z.array(z.string()),
  api: z.object({
    url: z.string().optional(),
    token: z.string().optional(),
    putRunning: z.boolean(),
    timeoutMs: z.number().int().positive(),
  }),
  /** Empty when neither RESULT_SINKS nor CORESIGHT_API_URL is set: `run` refuses that (requireResultSink). */
  resultSinks: z.array(z.enum(SINKS)),
  resultsDir: z.string(),
  resultSubject: z.string(),
  logFile: z.string(),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
  metricsPort: z.number().int().nonnegative(),
  shutdownGraceMs: z.number().int().nonnegative(),
  /** SIGNATURE_RULES: the operator's grouping rules (lib/gdb/groupingRules.ts), validated; null for none. */
  signatureRules: GroupingRulesSchema.nullable(),
  symbols: z.object({
    store: z.string().optional(),
    cacheDir: z.string(),
    cacheMaxBytes: z.number().int().positive(),
    debuginfodUrls: z.string().optional(),
    sysroot: z.string().optional(),
    image: z.object({
      enabled: z.boolean(),
      cacheDir: z.string(),
      cacheMaxBytes: z.number().int().positive(),
      maxFileBytes: z.number().int().positive(),
      authFile: z.string().optional(),
      registry: z.object({
        allowedHosts: z.array(z.string()),
        insecure: z.array(z.string()),
        mirrors: z.record(z.string(), z.array(z.string())),
        maxManifestBytes: z.number().int().positive(),
        maxBlobBytes: z.number().int().positive(),
        timeoutMs: z.number().int().positive(),
      }),
    }),
  }),
  /** Crash-storm deduplication (lib/dedup/): off unless asked for, see docs/operations.md. */
  dedup: z.object({
    enabled: z.boolean(),
    /** How many analyses of one address signature run gdb before the next ones reference them. */
    after: z.number().int().positive(),
    ttlMs: z.number().int().positive(),
    bucket: z.string().regex(/^[A-Za-z0-9_-]+$/),
  }),
});
/**
 * Frozen all the way down at run time (see deepFreeze). The type stays
 * shallow-readonly so collaborators that take `string[]` and only read it
 * need no change.
 */
export type Config = Readonly<z.infer<typeof ConfigSchema>>;

/** Every variable the worker reads, with its default, for `--help` and docs. */
export const CONFIG_VARIABLES: ReadonlyArray<readonly [string, string, string]> = [
  ["NATS_URL", "nats://127.0.0.1:4222", "NATS server(s), comma-separated"],
  ["NATS_CREDS", "", "credentials file (JWT + nkey)"],
  ["NATS_TOKEN", "", "auth token"],
  ["NATS_TLS_CA / NATS_TLS_CERT / NATS_TLS_KEY", "", "TLS files"],
  ["NATS_STREAM", "COREDOG", "JetStream stream"],
  ["NATS_SUBJECT", "coredog.coredump.uploaded", "subject of the events"],
  ["NATS_CREATE_STREAM", "true", "create the stream when missing"],
  ["NATS_CONSUMER", "coresight-worker", "durable pull consumer shared by the pool"],
  ["NATS_ACK_WAIT_MS", "60000", "ack wait; working() heartbeats extend it"],
  ["NATS_MAX_DELIVER", "5", "deliveries before retries_exhausted (the worker's limit; the server redelivers without one)"],
  ["NATS_BACKOFF_MS", "5000,30000,120000", "nak delays for transient failures"],
  ["WORKER_CONCURRENCY", "cgroup CPU quota (at least 1, at most the CPU count)", "jobs in flight per process"],
  ["WORK_DIR", "$TMPDIR/coresight-worker", "per-job download directories"],
  ["MAX_DUMP_BYTES", "68719476736 (64 GiB)", "larger dumps fail with too_large"],
  ["DOWNLOAD_TIMEOUT_MS", "14400000 (4 h)", "deadline for a whole download, heartbeats do not extend it (0 = none)"],
  ["DOWNLOAD_MIN_BYTES_PER_S", "65536", "abort a download slower than this over DOWNLOAD_RATE_WINDOW_MS (0 = off)"],
  ["DOWNLOAD_RATE_WINDOW_MS", "60000", "window the minimum download rate is measured over"],
  ["GDB_PATH", "gdb", "gdb binary"],
  ["GDB_MULTIARCH_PATH", "gdb-multiarch", "gdb for foreign-architecture cores"],
  ["GDB_TIMEOUT_MS", "300000", "kill gdb's process group after this"],
  ["GDB_MAX_OUTPUT_BYTES", "67108864", "cap on gdb output (result marked truncated)"],
  ["GDB_MAX_FRAMES", "256", "frames per thread"],
  ["GDB_PRESTART", "true", "keep one gdb started and waiting for the next job: its start-up (~70 ms) is off the job's time; ~33 MB while it waits"],
  ["GDB_INDEX_CACHE", "true", "keep the DWARF indexes gdb builds for libraries, across jobs (scoped by where each file came from)"],
  ["GDB_INDEX_CACHE_DIR", "$WORK_DIR/gdb-index", "gdb index cache directory"],
  ["GDB_INDEX_CACHE_MAX_BYTES", "1073741824 (1 GiB)", "gdb index cache size bound (LRU)"],
  ["SIGNATURE_RULES", "", "JSON file of grouping rules: frames to skip, in-app / not in-app frames, max_frames (docs/api.md)"],
  ["S3_ENDPOINT", "", "S3-compatible endpoint (MinIO, COS, OSS)"],
  ["S3_REGION", "us-east-1 (or AWS_REGION)", "S3 region"],
  ["AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY", "", "credentials: enables GetObject by bucket/key"],
  ["S3_FORCE_PATH_STYLE", "false", "path-style S3 addressing"],
  ["ALLOWED_DUMP_HOSTS", "(any public host)", "comma list of hosts/IPs/CIDRs/*.suffix a dump may come from; host:port pins a port"],
  ["ALLOWED_FILE_ROOTS", "", "directories cfs:// and file:// URLs may point into"],
  ["CORESIGHT_API_URL", "", "CoreSight API base URL (enables the http sink)"],
  ["CORESIGHT_API_TOKEN", "", "bearer token for the API"],
  ["CORESIGHT_PUT_RUNNING", "false", "PUT a running status when a job starts"],
  ["CORESIGHT_API_TIMEOUT_MS", "30000", "per-request timeout"],
  ["RESULT_SINKS", "http if CORESIGHT_API_URL is set, else none (run refuses to start)", "comma list of http, file, nats"],
  ["RESULTS_DIR", "./results", "file sink directory"],
  ["RESULT_SUBJECT", "coresight.analysis", "nats sink subject prefix (.completed/.failed)"],
  ["NATS_RESULT_STREAM", "CORESIGHT_RESULTS", "JetStream stream that persists the nats sink's results"],
  ["LOG_FILE", "./worker.log", "JSON log file ('' = stdout only)"],
  ["LOG_LEVEL", "info", "fatal|error|warn|info|debug|trace|silent"],
  ["METRICS_PORT", "9464", "/healthz /readyz /metrics (0 = off)"],
  ["SHUTDOWN_GRACE_MS", "30000", "time in-flight jobs get on SIGTERM"],
  ["SYMBOL_STORE", "", "debuginfod-layout store: /path or s3://bucket/prefix"],
  ["SYMBOL_CACHE_DIR", "$WORK_DIR/symbols", "local cache of the symbol store"],
  ["SYMBOL_CACHE_MAX_BYTES", "10737418240 (10 GiB)", "cache size bound"],
  ["DEBUGINFOD_URLS", "", "debuginfod servers (enables gdb's debuginfod)"],
  ["SYSROOT", "", "directory with the crashed container's files"],
  ["IMAGE_SYMBOLS", "true", "pull the crashed container's files from its registry (the event's data.image)"],
  ["ALLOWED_REGISTRY_HOSTS", "(any public host)", "registries, mirrors and token realms the image source may reach (ALLOWED_DUMP_HOSTS syntax)"],
  ["REGISTRY_AUTH_FILE", "", "docker config.json-style credentials (a dockerconfigjson secret)"],
  ["REGISTRY_MIRRORS", "", "comma list of registry=mirror (docker.io=mirror.local:5000); mirrors are tried first"],
  ["REGISTRY_INSECURE", "", "comma list of registries (host:port) spoken to over plain http"],
  ["REGISTRY_TIMEOUT_MS", "300000", "deadline of each registry request (a whole layer included)"],
  ["IMAGE_CACHE_DIR", "$WORK_DIR/images", "layer blobs, layer indexes and files by build-id (LRU)"],
  ["IMAGE_CACHE_MAX_BYTES", "10737418240 (10 GiB)", "image cache size bound"],
  ["IMAGE_MAX_MANIFEST_BYTES", "4194304", "larger manifests are refused"],
  ["IMAGE_MAX_LAYER_BYTES", "4294967296 (4 GiB)", "larger layers are not pulled"],
  ["IMAGE_MAX_FILE_BYTES", "2147483648 (2 GiB)", "larger files are not extracted"],
  ["DEDUP", "off", "crash storms: a core whose address signature already has DEDUP_AFTER completed analyses gets a result that references one, without gdb"],
  ["DEDUP_AFTER", "1", "analyses of one address signature that run gdb before deduplication starts"],
  ["DEDUP_TTL_MS", "86400000 (24 h)", "how long an address signature's analysis is referenced (the KV bucket's TTL)"],
  ["DEDUP_BUCKET", "coresight_dedup", "JetStream KV bucket of address signatures, shared by the pool"],
];

/** GDB_INDEX_CACHE*: every variable checked, also when the cache is off (a typo must not wait for the day it is turned on). */
function gdbIndexCache(env: NodeJS.ProcessEnv, workDir: string): { dir: string; maxBytes: number } | null {
  const on = boolean("GDB_INDEX_CACHE", true)(env.GDB_INDEX_CACHE);
  const maxBytes = integer("GDB_INDEX_CACHE_MAX_BYTES", GiB, 1)(env.GDB_INDEX_CACHE_MAX_BYTES);
  return on ? { dir: path.resolve(env.GDB_INDEX_CACHE_DIR || path.join(workDir, "gdb-index")), maxBytes } : null;
}

/** REGISTRY_MIRRORS: `registry=mirror` pairs; a registry may be named more than once (mirrors in order). */
function mirrors(raw: string | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const item of list(raw)) {
    const m = /^([A-Za-z0-9.-]+(?::\d+)?)=([A-Za-z0-9.-]+(?::\d+)?)$/.exec(item);
    if (!m) throw new ConfigError("REGISTRY_MIRRORS", `expected registry=mirror (host[:port] each), got ${JSON.stringify(item)}`);
    (out[m[1]!] ??= []).push(m[2]!);
  }
  return out;
}

type Env = Record<string, string | undefined>;

/** The NATS_* variables, shared by the worker and the CoreSight API (same stream, same subject). */
function natsConfig(env: Env): Config["nats"] {
  return {
    url: env.NATS_URL || "nats://127.0.0.1:4222",
    credsFile: env.NATS_CREDS || undefined,
    token: env.NATS_TOKEN || undefined,
    tlsCaFile: env.NATS_TLS_CA || undefined,
    tlsCertFile: env.NATS_TLS_CERT || undefined,
    tlsKeyFile: env.NATS_TLS_KEY || undefined,
    stream: env.NATS_STREAM || "COREDOG",
    subject: env.NATS_SUBJECT || "coredog.coredump.uploaded",
    createStream: boolean("NATS_CREATE_STREAM", true)(env.NATS_CREATE_STREAM),
    resultStream: env.NATS_RESULT_STREAM || "CORESIGHT_RESULTS",
    consumer: env.NATS_CONSUMER || "coresight-worker",
    ackWaitMs: integer("NATS_ACK_WAIT_MS", 60_000, 1000)(env.NATS_ACK_WAIT_MS),
    maxDeliver: integer("NATS_MAX_DELIVER", 5, 1)(env.NATS_MAX_DELIVER),
    backoffMs: durationList("NATS_BACKOFF_MS", [5_000, 30_000, 120_000])(env.NATS_BACKOFF_MS),
  };
}

export function loadConfig(env: Env = process.env): Config {
  const workDir = env.WORK_DIR || path.join(os.tmpdir(), "coresight-worker");
  const apiUrl = url("CORESIGHT_API_URL")(env.CORESIGHT_API_URL);
  const sinks = list(env.RESULT_SINKS);
  for (const s of sinks) {
    if (!(SINKS as readonly string[]).includes(s)) {
      throw new ConfigError("RESULT_SINKS", `unknown sink ${JSON.stringify(s)} (expected ${SINKS.join(", ")})`);
    }
  }
  if (sinks.includes("http") && !apiUrl) {
    throw new ConfigError("CORESIGHT_API_URL", "required when RESULT_SINKS includes http");
  }
  const logLevel = env.LOG_LEVEL || "info";
  const raw = {
    nats: natsConfig(env),
    concurrency: integer("WORKER_CONCURRENCY", defaultConcurrency(), 1)(env.WORKER_CONCURRENCY),
    workDir,
    maxDumpBytes: integer("MAX_DUMP_BYTES", DEFAULT_MAX_DUMP_BYTES, 1)(env.MAX_DUMP_BYTES),
    download: {
      timeoutMs: integer("DOWNLOAD_TIMEOUT_MS", 4 * 3600_000, 0)(env.DOWNLOAD_TIMEOUT_MS),
      minBytesPerSecond: integer("DOWNLOAD_MIN_BYTES_PER_S", 64 * 1024, 0)(env.DOWNLOAD_MIN_BYTES_PER_S),
      rateWindowMs: integer("DOWNLOAD_RATE_WINDOW_MS", 60_000, 1000)(env.DOWNLOAD_RATE_WINDOW_MS),
    },
    gdb: {
      path: env.GDB_PATH || "gdb",
      multiarchPath: env.GDB_MULTIARCH_PATH || "gdb-multiarch",
      timeoutMs: integer("GDB_TIMEOUT_MS", 300_000, 1)(env.GDB_TIMEOUT_MS),
      maxOutputBytes: integer("GDB_MAX_OUTPUT_BYTES", 64 * MiB, 1024)(env.GDB_MAX_OUTPUT_BYTES),
      maxFrames: integer("GDB_MAX_FRAMES", DEFAULT_MAX_FRAMES, 1)(env.GDB_MAX_FRAMES),
      indexCache: gdbIndexCache(env, workDir),
      prestart: boolean("GDB_PRESTART", true)(env.GDB_PRESTART),
    },
    s3: {
      endpoint: url("S3_ENDPOINT")(env.S3_ENDPOINT),
      region: env.S3_REGION || env.AWS_REGION || "us-east-1",
      accessKeyId: env.AWS_ACCESS_KEY_ID || undefined,
      secretAccessKey: env.AWS_SECRET_ACCESS_KEY || undefined,
      forcePathStyle: boolean("S3_FORCE_PATH_STYLE", false)(env.S3_FORCE_PATH_STYLE),
    },
    allowedDumpHosts: list(env.ALLOWED_DUMP_HOSTS),
    allowedFileRoots: list(env.ALLOWED_FILE_ROOTS).map((p) => path.resolve(p)),
    api: {
      url: apiUrl,
      token: env.CORESIGHT_API_TOKEN || undefined,
      putRunning: boolean("CORESIGHT_PUT_RUNNING", false)(env.CORESIGHT_PUT_RUNNING),
      timeoutMs: integer("CORESIGHT_API_TIMEOUT_MS", 30_000, 1)(env.CORESIGHT_API_TIMEOUT_MS),
    },
    // No silent `file` default: in a pod its directory vanishes with the pod, and every result with it.
    resultSinks: sinks.length > 0 ? sinks : apiUrl ? ["http"] : [],
    resultsDir: path.resolve(env.RESULTS_DIR || "results"),
    resultSubject: env.RESULT_SUBJECT || "coresight.analysis",
    logFile: env.LOG_FILE ?? "worker.log",
    logLevel,
    metricsPort: integer("METRICS_PORT", 9464, 0, 65535)(env.METRICS_PORT),
    shutdownGraceMs: integer("SHUTDOWN_GRACE_MS", 30_000, 0)(env.SHUTDOWN_GRACE_MS),
    signatureRules: signatureRules(env.SIGNATURE_RULES),
    symbols: {
      store: env.SYMBOL_STORE || undefined,
      cacheDir: env.SYMBOL_CACHE_DIR || path.join(workDir, "symbols"),
      cacheMaxBytes: integer("SYMBOL_CACHE_MAX_BYTES", 10 * GiB, 1)(env.SYMBOL_CACHE_MAX_BYTES),
      debuginfodUrls: env.DEBUGINFOD_URLS || undefined,
      sysroot: env.SYSROOT || undefined,
      image: {
        enabled: boolean("IMAGE_SYMBOLS", true)(env.IMAGE_SYMBOLS),
        cacheDir: env.IMAGE_CACHE_DIR || path.join(workDir, "images"),
        cacheMaxBytes: integer("IMAGE_CACHE_MAX_BYTES", 10 * GiB, 1)(env.IMAGE_CACHE_MAX_BYTES),
        maxFileBytes: integer("IMAGE_MAX_FILE_BYTES", 2 * GiB, 1)(env.IMAGE_MAX_FILE_BYTES),
        authFile: env.REGISTRY_AUTH_FILE || undefined,
        registry: {
          allowedHosts: list(env.ALLOWED_REGISTRY_HOSTS),
          insecure: list(env.REGISTRY_INSECURE),
          mirrors: mirrors(env.REGISTRY_MIRRORS),
          maxManifestBytes: integer("IMAGE_MAX_MANIFEST_BYTES", 4 * MiB, 1024)(env.IMAGE_MAX_MANIFEST_BYTES),
          maxBlobBytes: integer("IMAGE_MAX_LAYER_BYTES", 4 * GiB, 1)(env.IMAGE_MAX_LAYER_BYTES),
          timeoutMs: integer("REGISTRY_TIMEOUT_MS", 300_000, 1)(env.REGISTRY_TIMEOUT_MS),
        },
      },
    },
    dedup: {
      enabled: boolean("DEDUP", false)(env.DEDUP),
      after: integer("DEDUP_AFTER", 1, 1)(env.DEDUP_AFTER),
      ttlMs: integer("DEDUP_TTL_MS", 24 * 60 * 60 * 1000, 1000)(env.DEDUP_TTL_MS),
      bucket: bucketName("DEDUP_BUCKET", "coresight_dedup")(env.DEDUP_BUCKET),
    },
  };
  if (raw.symbols.store?.startsWith("s3://") && !(raw.s3.accessKeyId && raw.s3.secretAccessKey)) {
    // Without credentials the store cannot be opened, and the analysis would
    // silently run with no symbols at all: refuse at start-up instead.
    throw new ConfigError("SYMBOL_STORE", `${raw.symbols.store} needs S3 credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)`);
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? issue.path.join(".") : "?";
    if (where === "logLevel") throw new ConfigError("LOG_LEVEL", `unknown level ${JSON.stringify(logLevel)}`);
    throw new ConfigError(where, issue?.message ?? "invalid configuration");
  }
  return deepFreeze(parsed.data);
}

/**
 * `run` stores every result somewhere that outlives the worker, so it needs a
 * sink: throws a ConfigError naming CORESIGHT_API_URL and RESULT_SINKS when
 * there is none. (`file` is still there when asked for: RESULT_SINKS=file.)
 */
export function requireResultSink(config: Config): void {
  if (config.resultSinks.length === 0) {
    throw new ConfigError(
      "RESULT_SINKS",
      "no result sink configured: set CORESIGHT_API_URL (the http sink) or RESULT_SINKS (http, file, nats); without one every result would be lost",
    );
  }
}

/** `Object.freeze` is shallow: without this, `config.nats.url = ...` would still succeed. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * The CoreSight API's configuration (`coresight-worker api`). The NATS_*
 * variables are the worker's: the API publishes onto the stream and subject
 * the pool consumes.
 */
export interface ApiConfig {
  listen: { host: string; port: number };
  database: { kind: "sqlite"; file: string } | { kind: "postgres"; url: string };
  /** Tokens CoreDog agents send with their reports. */
  agentTokens: readonly string[];
  /** Tokens the worker pool stores results with (also read and manage). */
  workerTokens: readonly string[];
  /** Tokens for the read-only query API. */
  readTokens: readonly string[];
  /** Largest request body accepted (413 above). */
  maxBodyBytes: number;
  nats: Config["nats"];
  /** How long a publish waits for its PubAck before the row is retried. */
  publishTimeoutMs: number;
  logFile: string;
  logLevel: Config["logLevel"];
  shutdownGraceMs: number;
  /** Webhooks told when a crash group is new or regressed (their URLs hold a secret key). */
  notify: { slack?: string; wecom?: string };
}

export const API_CONFIG_VARIABLES: ReadonlyArray<readonly [string, string, string]> = [
  ["API_LISTEN", "0.0.0.0:8000", "host:port the API listens on"],
  ["DATABASE_URL", "sqlite:./coresight.db", "sqlite:<file> or postgres://user:pass@host:5432/db"],
  ["CORESIGHT_AGENT_TOKENS", "", "comma list of CoreDog agent tokens (or CORESIGHT_AGENT_TOKENS_FILE)"],
  ["CORESIGHT_WORKER_TOKENS", "", "comma list of worker tokens: results, read, resolve, reprocess (or _FILE)"],
  ["CORESIGHT_READ_TOKENS", "", "comma list of read-only tokens (or _FILE)"],
  ["API_MAX_BODY_BYTES", "1048576", "larger request bodies answer 413"],
  ["API_PUBLISH_TIMEOUT_MS", "5000", "wait for a JetStream PubAck before retrying the outbox row"],
  ["NATS_URL / NATS_CREDS / NATS_TOKEN / NATS_TLS_*", "as the worker", "NATS connection"],
  ["NATS_STREAM / NATS_SUBJECT / NATS_CREATE_STREAM", "as the worker", "where reports are queued"],
  ["NOTIFY_SLACK_WEBHOOK_URL", "", "Slack incoming webhook: new and regressed crash groups"],
  ["NOTIFY_WECOM_WEBHOOK_URL", "", "WeCom group robot webhook (…/cgi-bin/webhook/send?key=…)"],
  ["LOG_FILE", "'' (stdout only)", "JSON log file"],
  ["LOG_LEVEL", "info", "fatal|error|warn|info|debug|trace|silent"],
  ["SHUTDOWN_GRACE_MS", "30000", "time in-flight requests get on SIGTERM"],
];

/** SIGNATURE_RULES: the rules file, read and validated at start-up so a bad one stops the worker, not each job. */
export function signatureRules(file: string | undefined): GroupingRulesData | null {
  if (!file) return null;
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e: unknown) {
    throw new ConfigError("SIGNATURE_RULES", `cannot read ${JSON.stringify(file)}: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    return parseGroupingRules(text);
  } catch (e: unknown) {
    throw new ConfigError("SIGNATURE_RULES", `${JSON.stringify(file)}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** `NAME` as a comma/newline list, or the contents of the file `NAME_FILE` (a mounted secret). */
function tokenList(env: Env, name: string): string[] {
  const file = env[`${name}_FILE`];
  let raw = env[name];
  if (file) {
    if (raw) throw new ConfigError(name, `set either ${name} or ${name}_FILE, not both`);
    try {
      raw = fs.readFileSync(file, "utf8");
    } catch (e: unknown) {
      throw new ConfigError(`${name}_FILE`, `cannot read ${JSON.stringify(file)}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const tokens = list((raw ?? "").replace(/\s*\n\s*/g, ","));
  for (const t of tokens) {
    // The value is a secret: the message says what is wrong, never the token.
    if (t.length < 16) throw new ConfigError(name, "every token must be at least 16 characters");
    if (/\s/.test(t)) throw new ConfigError(name, "a token must not contain white space");
  }
  return tokens;
}

function listenAddress(raw: string | undefined): { host: string; port: number } {
  const value = raw || "0.0.0.0:8000";
  const m = /^(?:(\[[0-9a-fA-F:.]+\]|[^:\s]*):)?(\d+)$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !Number.isSafeInteger(port) || port > 65535) {
    throw new ConfigError("API_LISTEN", `expected host:port (e.g. 0.0.0.0:8000), got ${JSON.stringify(value)}`);
  }
  const host = (m[1] || "0.0.0.0").replace(/^\[(.*)\]$/, "$1");
  return { host, port };
}

function databaseUrl(raw: string | undefined): ApiConfig["database"] {
  const value = raw || "sqlite:./coresight.db";
  if (/^postgres(ql)?:\/\//i.test(value)) {
    try {
      new URL(value);
    } catch {
      throw new ConfigError("DATABASE_URL", "not a valid postgres:// URL");
    }
    return { kind: "postgres", url: value };
  }
  const m = /^sqlite:(?:\/\/)?(.+)$/i.exec(value);
  if (!m) {
    // The URL may hold a password: name the scheme, not the value.
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(value)?.[1];
    throw new ConfigError("DATABASE_URL", `expected sqlite:<file> or postgres://..., got ${scheme ? `scheme ${JSON.stringify(scheme)}` : JSON.stringify(value)}`);
  }
  return { kind: "sqlite", file: m[1] === ":memory:" ? ":memory:" : path.resolve(m[1]!) };
}

/** An http(s) webhook URL; the message never quotes it (its path or query is the secret). */
function webhookUrl(name: string, raw: string | undefined): string | undefined {
  if (raw === undefined || raw === "") return undefined;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(name, "not a valid URL");
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new ConfigError(name, `expected an http:// or https:// URL, got scheme ${JSON.stringify(u.protocol)}`);
  return u.toString();
}

export function loadApiConfig(env: Env = process.env): ApiConfig {
  const agentTokens = tokenList(env, "CORESIGHT_AGENT_TOKENS");
  const workerTokens = tokenList(env, "CORESIGHT_WORKER_TOKENS");
  const readTokens = tokenList(env, "CORESIGHT_READ_TOKENS");
  // One token in two roles would let an agent store results or a worker forge reports.
  for (const [name, a, b] of [
    ["CORESIGHT_WORKER_TOKENS", workerTokens, agentTokens],
    ["CORESIGHT_READ_TOKENS", readTokens, agentTokens],
    ["CORESIGHT_READ_TOKENS", readTokens, workerTokens],
  ] as const) {
    if (a.some((t) => b.includes(t))) throw new ConfigError(name, "a token appears in two roles; give each role its own tokens");
  }
  const logLevel = env.LOG_LEVEL || "info";
  if (!["fatal", "error", "warn", "info", "debug", "trace", "silent"].includes(logLevel)) {
    throw new ConfigError("LOG_LEVEL", `unknown level ${JSON.stringify(logLevel)}`);
  }
  return deepFreeze({
    listen: listenAddress(env.API_LISTEN),
    database: databaseUrl(env.DATABASE_URL),
    agentTokens,
    workerTokens,
    readTokens,
    maxBodyBytes: integer("API_MAX_BODY_BYTES", 1024 * 1024, 1024)(env.API_MAX_BODY_BYTES),
    nats: natsConfig(env),
    publishTimeoutMs: integer("API_PUBLISH_TIMEOUT_MS", 5000, 100)(env.API_PUBLISH_TIMEOUT_MS),
    logFile: env.LOG_FILE ?? "",
    logLevel: logLevel as Config["logLevel"],
    shutdownGraceMs: integer("SHUTDOWN_GRACE_MS", 30_000, 0)(env.SHUTDOWN_GRACE_MS),
    notify: {
      slack: webhookUrl("NOTIFY_SLACK_WEBHOOK_URL", env.NOTIFY_SLACK_WEBHOOK_URL),
      wecom: webhookUrl("NOTIFY_WECOM_WEBHOOK_URL", env.NOTIFY_WECOM_WEBHOOK_URL),
    },
  });
}
