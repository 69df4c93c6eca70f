/**
 * loadConfig: defaults, one ConfigError per bad value naming the variable and
 * the value, sink rules, and a result nobody can change afterwards.
 */
import { describe, expect, it } from "@jest/globals";
import os from "node:os";
import path from "node:path";
import fs from "node:fs/promises";
import { writeFileSync } from "node:fs";
import { DEFAULT_GDB_MAX_OUTPUT_BYTES } from "../../lib/gdb/launch.js";
import { CONFIG_VARIABLES, ConfigError, concurrencyFromCgroup, defaultConcurrency, loadConfig, readCgroupCpuFiles, requireResultSink } from "../../lib/config.js";

/** Runs loadConfig and returns the ConfigError it throws (fails the test if it does not). */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (e: unknown) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error(`loadConfig(${JSON.stringify(env)}) did not throw`);
}

describe("loadConfig defaults", () => {
  it("GDB_MAX_OUTPUT_BYTES' default is the one analyze guesses for the gdb it starts ahead (lib/gdb/launch.ts)", () => {
    expect(loadConfig({}).gdb.maxOutputBytes).toBe(DEFAULT_GDB_MAX_OUTPUT_BYTES);
  });

  it("fills every default from an empty environment", () => {
    const c = loadConfig({});
    expect(c.nats).toEqual({
      url: "nats://127.0.0.1:4222",
      credsFile: undefined,
      token: undefined,
      tlsCaFile: undefined,
      tlsCertFile: undefined,
      tlsKeyFile: undefined,
      stream: "COREDOG",
      subject: "coredog.coredump.uploaded",
      createStream: true,
      resultStream: "CORESIGHT_RESULTS",
      consumer: "coresight-worker",
      ackWaitMs: 60_000,
      maxDeliver: 5,
      backoffMs: [5_000, 30_000, 120_000],
    });
    expect(c.concurrency).toBe(defaultConcurrency());
    expect(c.workDir).toBe(path.join(os.tmpdir(), "coresight-worker"));
    expect(c.maxDumpBytes).toBe(64 * 1024 ** 3);
    expect(c.download).toEqual({ timeoutMs: 4 * 3600_000, minBytesPerSecond: 64 * 1024, rateWindowMs: 60_000 });
    expect(c.gdb).toEqual({
      path: "gdb",
      multiarchPath: "gdb-multiarch",
      timeoutMs: 300_000,
      maxOutputBytes: 64 * 1024 ** 2,
      maxFrames: 256,
      indexCache: { dir: path.join(os.tmpdir(), "coresight-worker", "gdb-index"), maxBytes: 1024 ** 3 },
      prestart: true,
    });
    expect(c.s3).toEqual({ endpoint: undefined, region: "us-east-1", accessKeyId: undefined, secretAccessKey: undefined, forcePathStyle: false });
    expect(c.allowedDumpHosts).toEqual([]);
    expect(c.allowedFileRoots).toEqual([]);
    expect(c.api).toEqual({ url: undefined, token: undefined, putRunning: false, timeoutMs: 30_000 });
    // No sink by default: `run` refuses that (requireResultSink), nothing silently picks `file`.
    expect(c.resultSinks).toEqual([]);
    expect(c.resultsDir).toBe(path.resolve("results"));
    expect(c.resultSubject).toBe("coresight.analysis");
    expect(c.logFile).toBe("worker.log");
    expect(c.logLevel).toBe("info");
    expect(c.metricsPort).toBe(9464);
    expect(c.shutdownGraceMs).toBe(30_000);
    expect(c.symbols).toEqual({
      store: undefined,
      cacheDir: path.join(os.tmpdir(), "coresight-worker", "symbols"),
      cacheMaxBytes: 10 * 1024 ** 3,
      debuginfodUrls: undefined,
      sysroot: undefined,
      image: {
        enabled: true,
        cacheDir: path.join(os.tmpdir(), "coresight-worker", "images"),
        cacheMaxBytes: 10 * 1024 ** 3,
        maxFileBytes: 2 * 1024 ** 3,
        authFile: undefined,
        registry: { allowedHosts: [], insecure: [], mirrors: {}, maxManifestBytes: 4 * 1024 ** 2, maxBlobBytes: 4 * 1024 ** 3, timeoutMs: 300_000 },
      },
    });
  });

  it("REGISTRY_MIRRORS: registry=mirror pairs, a registry named twice keeps both in order; a bad pair names the variable", () => {
    expect(loadConfig({ REGISTRY_MIRRORS: "docker.io=m1.local:5000, docker.io=m2.local,reg.example=m3" }).symbols.image.registry.mirrors).toEqual({
      "docker.io": ["m1.local:5000", "m2.local"],
      "reg.example": ["m3"],
    });
    expect(() => loadConfig({ REGISTRY_MIRRORS: "docker.io" })).toThrow(/^REGISTRY_MIRRORS: expected registry=mirror/);
    expect(() => loadConfig({ IMAGE_SYMBOLS: "maybe" })).toThrow(/^IMAGE_SYMBOLS: /);
  });

  it("treats an empty variable as unset", () => {
    const c = loadConfig({ NATS_URL: "", WORKER_CONCURRENCY: "", NATS_BACKOFF_MS: "", NATS_CREATE_STREAM: "", CORESIGHT_API_URL: "" });
    expect(c.nats.url).toBe("nats://127.0.0.1:4222");
    expect(c.concurrency).toBe(defaultConcurrency());
    expect(c.nats.backoffMs).toEqual([5_000, 30_000, 120_000]);
    expect(c.nats.createStream).toBe(true);
    expect(c.api.url).toBeUndefined();
  });

  it("LOG_FILE='' means stdout only, not the default file", () => {
    expect(loadConfig({ LOG_FILE: "" }).logFile).toBe("");
  });

  it("reads every kind of value", () => {
    const c = loadConfig({
      NATS_URL: "nats://a:4222,nats://b:4222",
      NATS_TOKEN: "t0k",
      NATS_CREATE_STREAM: "no",
      NATS_ACK_WAIT_MS: "1000",
      NATS_BACKOFF_MS: " 10, 20 ,30 ",
      WORKER_CONCURRENCY: "3",
      WORK_DIR: "/srv/work",
      GDB_MAX_OUTPUT_BYTES: "1024",
      S3_ENDPOINT: "http://minio:9000/",
      AWS_REGION: "eu-west-3",
      S3_FORCE_PATH_STYLE: "TRUE",
      ALLOWED_DUMP_HOSTS: "minio, *.example.com,,",
      ALLOWED_FILE_ROOTS: "relative/dir,/abs",
      CORESIGHT_API_URL: "https://api.example.com/v1/",
      CORESIGHT_PUT_RUNNING: "on",
      LOG_LEVEL: "silent",
      METRICS_PORT: "0",
      SHUTDOWN_GRACE_MS: "0",
    });
    expect(c.nats.url).toBe("nats://a:4222,nats://b:4222");
    expect(c.nats.token).toBe("t0k");
    expect(c.nats.createStream).toBe(false);
    expect(c.nats.ackWaitMs).toBe(1000);
    expect(c.nats.backoffMs).toEqual([10, 20, 30]);
    expect(c.concurrency).toBe(3);
    expect(c.symbols.cacheDir).toBe("/srv/work/symbols");
    expect(c.gdb.maxOutputBytes).toBe(1024);
    expect(c.s3.endpoint).toBe("http://minio:9000");
    expect(c.s3.region).toBe("eu-west-3");
    expect(c.s3.forcePathStyle).toBe(true);
    expect(c.allowedDumpHosts).toEqual(["minio", "*.example.com"]);
    expect(c.allowedFileRoots).toEqual([path.resolve("relative/dir"), "/abs"]);
    // An API URL alone selects the http sink; the trailing slash goes.
    expect(c.api.url).toBe("https://api.example.com/v1");
    expect(c.resultSinks).toEqual(["http"]);
    expect(c.api.putRunning).toBe(true);
    expect(c.logLevel).toBe("silent");
    expect(c.metricsPort).toBe(0);
    expect(c.shutdownGraceMs).toBe(0);
  });

  it("S3_REGION wins over AWS_REGION", () => {
    expect(loadConfig({ S3_REGION: "ap-east-1", AWS_REGION: "eu-west-3" }).s3.region).toBe("ap-east-1");
  });
});

describe("loadConfig rejects bad values, naming the variable and the value", () => {
  const cases: Array<[string, string]> = [
    ["WORKER_CONCURRENCY", "abc"],
    ["WORKER_CONCURRENCY", "0"],
    ["WORKER_CONCURRENCY", "1.5"],
    ["WORKER_CONCURRENCY", "-2"],
    ["WORKER_CONCURRENCY", "0x10"],
    ["WORKER_CONCURRENCY", "1e1"],
    ["NATS_ACK_WAIT_MS", "999"],
    ["NATS_MAX_DELIVER", "0"],
    ["NATS_BACKOFF_MS", "5000,soon"],
    ["NATS_BACKOFF_MS", "5000,-1"],
    ["NATS_BACKOFF_MS", " , "],
    ["NATS_CREATE_STREAM", "maybe"],
    ["MAX_DUMP_BYTES", "64G"],
    ["GDB_TIMEOUT_MS", "0"],
    ["DOWNLOAD_TIMEOUT_MS", "2h"],
    ["DOWNLOAD_MIN_BYTES_PER_S", "-5"],
    ["DOWNLOAD_RATE_WINDOW_MS", "999"],
    ["GDB_MAX_OUTPUT_BYTES", "1023"],
    ["GDB_MAX_FRAMES", "many"],
    ["S3_ENDPOINT", "not a url"],
    ["S3_ENDPOINT", "minio:9000"],
    ["S3_FORCE_PATH_STYLE", "2"],
    ["CORESIGHT_API_URL", "localhost:8000"],
    ["CORESIGHT_API_URL", "ftp://api.example.com"],
    ["CORESIGHT_PUT_RUNNING", "sometimes"],
    ["CORESIGHT_API_TIMEOUT_MS", "0"],
    ["RESULT_SINKS", "file,s3"],
    ["LOG_LEVEL", "verbose"],
    ["METRICS_PORT", "-1"],
    ["METRICS_PORT", "65536"],
    ["METRICS_PORT", " "],
    ["SHUTDOWN_GRACE_MS", "30s"],
    ["SYMBOL_CACHE_MAX_BYTES", "0"],
    ["GDB_INDEX_CACHE", "maybe"],
    ["GDB_PRESTART", "maybe"],
    ["GDB_INDEX_CACHE_MAX_BYTES", "0"],
    ["DEDUP", "maybe"],
    ["DEDUP_AFTER", "0"],
    ["DEDUP_TTL_MS", "5"],
    ["DEDUP_BUCKET", "a.b"],
  ];
  it.each(cases)("%s=%j", (variable, value) => {
    const err = configError({ [variable]: value });
    expect(err.variable).toBe(variable);
    expect(err.message).toContain(variable);
    // The offending text is quoted as given (or, for a list, the bad item).
    const shown = variable === "RESULT_SINKS" ? "s3" : value;
    expect(err.message).toContain(JSON.stringify(shown));
    expect(err.name).toBe("ConfigError");
  });
});

describe("RESULT_SINKS", () => {
  it("accepts several sinks, trimmed", () => {
    const c = loadConfig({ RESULT_SINKS: " file , nats ", CORESIGHT_API_URL: "http://api:8000" });
    expect(c.resultSinks).toEqual(["file", "nats"]);
  });

  it("the http sink needs CORESIGHT_API_URL", () => {
    const err = configError({ RESULT_SINKS: "file,http" });
    expect(err.variable).toBe("CORESIGHT_API_URL");
    expect(err.message).toMatch(/RESULT_SINKS/);
    expect(loadConfig({ RESULT_SINKS: "http", CORESIGHT_API_URL: "http://api:8000" }).resultSinks).toEqual(["http"]);
  });

  it("an unknown sink is named along with the ones that exist", () => {
    expect(configError({ RESULT_SINKS: "HTTP" }).message).toMatch(/"HTTP".*http, file, nats/);
  });
});

describe("SYMBOL_STORE", () => {
  it("an s3:// store needs S3 credentials, or the analysis would silently lose every symbol", () => {
    const err = configError({ SYMBOL_STORE: "s3://symbols/store" });
    expect(err.variable).toBe("SYMBOL_STORE");
    expect(err.message).toMatch(/AWS_ACCESS_KEY_ID/);
    const ok = loadConfig({ SYMBOL_STORE: "s3://symbols/store", AWS_ACCESS_KEY_ID: "k", AWS_SECRET_ACCESS_KEY: "s" });
    expect(ok.symbols.store).toBe("s3://symbols/store");
    expect(loadConfig({ SYMBOL_STORE: "/srv/symbols" }).symbols.store).toBe("/srv/symbols");
  });
});

describe("the result is frozen", () => {
  it("at the top and in every nested object and list", () => {
    const c = loadConfig({ ALLOWED_DUMP_HOSTS: "a,b" });
    expect(Object.isFrozen(c)).toBe(true);
    for (const nested of [c.nats, c.nats.backoffMs, c.gdb, c.s3, c.api, c.symbols, c.resultSinks, c.allowedDumpHosts, c.allowedFileRoots]) {
      expect(Object.isFrozen(nested)).toBe(true);
    }
    expect(() => {
      (c as { concurrency: number }).concurrency = 99;
    }).toThrow(TypeError);
    expect(() => {
      (c.nats as { url: string }).url = "nats://elsewhere";
    }).toThrow(TypeError);
    expect(() => {
      (c.resultSinks as string[]).push("nats");
    }).toThrow(TypeError);
    expect(c.nats.url).toBe("nats://127.0.0.1:4222");
  });

  it("each call returns a new object", () => {
    expect(loadConfig({})).not.toBe(loadConfig({}));
  });
});

describe("SIGNATURE_RULES", () => {
  it("reads and validates the rules file at start-up; the example in docs/ is valid", () => {
    const c = loadConfig({ SIGNATURE_RULES: path.resolve("docs/signature-rules.example.json") });
    expect(c.signatureRules).toMatchObject({ max_frames: 5, in_app: [{ function_prefix: "myco::" }, { module_prefix: "/opt/myco/" }] });
    expect(loadConfig({}).signatureRules).toBeNull();
  });
  it("a missing file, bad JSON, an unknown key or a bad regular expression is a configuration error naming it", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "rules-"));
    const file = (name: string, text: string) => {
      const p = path.join(dir, name);
      writeFileSync(p, text);
      return p;
    };
    try {
      expect(configError({ SIGNATURE_RULES: path.join(dir, "none.json") }).message).toMatch(/^SIGNATURE_RULES: cannot read/);
      expect(configError({ SIGNATURE_RULES: file("a.json", "{") }).message).toMatch(/not JSON/);
      expect(configError({ SIGNATURE_RULES: file("b.json", '{"skip": [{"fn": "x"}]}') }).message).toMatch(/skip\[0\]/);
      expect(configError({ SIGNATURE_RULES: file("c.json", '{"skip": [{"function": "("}]}') }).message).toMatch(/skip\[0\]\.function: /);
      expect(configError({ SIGNATURE_RULES: file("d.json", '{"in_app": [{}]}') }).message).toMatch(/in_app\[0\]: a matcher needs/);
      expect(configError({ SIGNATURE_RULES: file("e.json", '{"max_frames": 0}') }).message).toMatch(/max_frames/);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});

describe("CONFIG_VARIABLES", () => {
  it("lists each variable once, each with a description", () => {
    const names = CONFIG_VARIABLES.flatMap(([name]) => name.split(" / "));
    expect(new Set(names).size).toBe(names.length);
    for (const [name, , what] of CONFIG_VARIABLES) {
      expect(name).toMatch(/^[A-Z][A-Z0-9_]*( \/ [A-Z][A-Z0-9_]*)*$/);
      expect(what.length).toBeGreaterThan(0);
    }
  });

  it("every variable listed changes what loadConfig returns", () => {
    // A variable in the table that loadConfig ignores would be documentation
    // of nothing: set each to a valid non-default value and look for a change.
    const base = JSON.stringify(loadConfig({}));
    const sample: Record<string, string> = {
      NATS_URL: "nats://x:1",
      NATS_CREDS: "/c",
      NATS_TOKEN: "t",
      NATS_TLS_CA: "/ca",
      NATS_TLS_CERT: "/cert",
      NATS_TLS_KEY: "/key",
      NATS_STREAM: "S",
      NATS_SUBJECT: "s.s",
      NATS_CREATE_STREAM: "false",
      NATS_CONSUMER: "c",
      NATS_ACK_WAIT_MS: "2000",
      NATS_MAX_DELIVER: "2",
      NATS_BACKOFF_MS: "1",
      WORKER_CONCURRENCY: "77",
      WORK_DIR: "/w",
      MAX_DUMP_BYTES: "5",
      DOWNLOAD_TIMEOUT_MS: "0",
      DOWNLOAD_MIN_BYTES_PER_S: "0",
      DOWNLOAD_RATE_WINDOW_MS: "5000",
      GDB_PATH: "/g",
      GDB_MULTIARCH_PATH: "/gm",
      GDB_TIMEOUT_MS: "5",
      GDB_MAX_OUTPUT_BYTES: "2048",
      GDB_MAX_FRAMES: "5",
      S3_ENDPOINT: "http://s3:1",
      S3_REGION: "r",
      AWS_ACCESS_KEY_ID: "k",
      AWS_SECRET_ACCESS_KEY: "s",
      S3_FORCE_PATH_STYLE: "true",
      ALLOWED_DUMP_HOSTS: "h",
      ALLOWED_FILE_ROOTS: "/r",
      CORESIGHT_API_URL: "http://api:1",
      CORESIGHT_API_TOKEN: "t",
      CORESIGHT_PUT_RUNNING: "true",
      CORESIGHT_API_TIMEOUT_MS: "5",
      RESULT_SINKS: "nats",
      RESULTS_DIR: "/res",
      RESULT_SUBJECT: "r.s",
      NATS_RESULT_STREAM: "RS",
      LOG_FILE: "/l.log",
      LOG_LEVEL: "debug",
      METRICS_PORT: "1",
      SHUTDOWN_GRACE_MS: "5",
      GDB_PRESTART: "false",
      GDB_INDEX_CACHE: "false",
      GDB_INDEX_CACHE_DIR: "/gdb-index",
      GDB_INDEX_CACHE_MAX_BYTES: "5",
      SYMBOL_STORE: "/store",
      SYMBOL_CACHE_DIR: "/cache",
      SYMBOL_CACHE_MAX_BYTES: "5",
      DEBUGINFOD_URLS: "http://d:1",
      SYSROOT: "/sysroot",
      SIGNATURE_RULES: path.resolve("docs/signature-rules.example.json"),
      IMAGE_SYMBOLS: "false",
      ALLOWED_REGISTRY_HOSTS: "r.example",
      REGISTRY_AUTH_FILE: "/auth.json",
      REGISTRY_MIRRORS: "docker.io=m.local",
      REGISTRY_INSECURE: "r.local:5000",
      REGISTRY_TIMEOUT_MS: "5",
      IMAGE_CACHE_DIR: "/images",
      IMAGE_CACHE_MAX_BYTES: "5",
      IMAGE_MAX_MANIFEST_BYTES: "2048",
      IMAGE_MAX_LAYER_BYTES: "5",
      IMAGE_MAX_FILE_BYTES: "5",
      DEDUP: "on",
      DEDUP_AFTER: "3",
      DEDUP_TTL_MS: "60000",
      DEDUP_BUCKET: "storms",
    };
    for (const name of CONFIG_VARIABLES.flatMap(([n]) => n.split(" / "))) {
      expect([name, name in sample]).toEqual([name, true]);
      expect([name, JSON.stringify(loadConfig({ [name]: sample[name]! }))]).not.toEqual([name, base]);
    }
  });
});

describe("a result sink is required by run", () => {
  it("neither CORESIGHT_API_URL nor RESULT_SINKS: requireResultSink names both", () => {
    let err: unknown;
    try {
      requireResultSink(loadConfig({}));
    } catch (e: unknown) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/RESULT_SINKS/);
    expect((err as Error).message).toMatch(/CORESIGHT_API_URL/);
  });

  it("file when asked for explicitly, http from CORESIGHT_API_URL alone", () => {
    expect(() => requireResultSink(loadConfig({ RESULT_SINKS: "file" }))).not.toThrow();
    expect(loadConfig({ RESULT_SINKS: "file" }).resultSinks).toEqual(["file"]);
    expect(loadConfig({ CORESIGHT_API_URL: "http://api:8000" }).resultSinks).toEqual(["http"]);
  });
});

describe("WORKER_CONCURRENCY's default: the cgroup CPU quota", () => {
  it.each([
    ["v2 no limit", { cpuMax: "max 100000\n" }, 8, 8],
    ["v2 2 CPUs", { cpuMax: "200000 100000\n" }, 8, 2],
    ["v2 1.5 CPUs rounds down", { cpuMax: "150000 100000" }, 8, 1],
    ["v2 half a CPU: at least 1", { cpuMax: "50000 100000" }, 8, 1],
    ["v2 quota above the CPU count: capped", { cpuMax: "1600000 100000" }, 4, 4],
    ["v2 other period", { cpuMax: "300000 50000" }, 16, 6],
    ["v2 garbage", { cpuMax: "banana" }, 3, 3],
    ["v1 no limit", { cfsQuotaUs: "-1\n", cfsPeriodUs: "100000\n" }, 8, 8],
    ["v1 3 CPUs", { cfsQuotaUs: "300000\n", cfsPeriodUs: "100000\n" }, 8, 3],
    ["v1 tiny quota", { cfsQuotaUs: "1000", cfsPeriodUs: "100000" }, 8, 1],
    ["v1 capped", { cfsQuotaUs: "900000", cfsPeriodUs: "100000" }, 2, 2],
    ["no cgroup files", {}, 6, 6],
    ["no files, no CPUs reported", {}, 0, 1],
  ])("%s", (_name, files, cpus, want) => {
    expect(concurrencyFromCgroup(files, cpus)).toBe(want);
  });

  it("reads cpu.max (v2) before the v1 files, from a cgroup root", async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-cgroup-"));
    try {
      await fs.mkdir(path.join(root, "cpu"));
      await fs.writeFile(path.join(root, "cpu", "cpu.cfs_quota_us"), "100000\n");
      await fs.writeFile(path.join(root, "cpu", "cpu.cfs_period_us"), "100000\n");
      expect(readCgroupCpuFiles(root)).toEqual({ cfsQuotaUs: "100000\n", cfsPeriodUs: "100000\n" });
      expect(defaultConcurrency(root)).toBe(1);
      await fs.writeFile(path.join(root, "cpu.max"), "max 100000\n");
      expect(readCgroupCpuFiles(root)).toEqual({ cpuMax: "max 100000\n" });
      expect(defaultConcurrency(root)).toBe(os.availableParallelism());
    } finally {
      await fs.rm(root, { recursive: true, force: true });
    }
  });

  it("on this machine: the real /sys/fs/cgroup files give the default", () => {
    const files = readCgroupCpuFiles();
    const want = concurrencyFromCgroup(files, os.availableParallelism());
    expect(want).toBeGreaterThanOrEqual(1);
    expect(want).toBeLessThanOrEqual(Math.max(1, os.availableParallelism()));
    expect(loadConfig({}).concurrency).toBe(want);
    expect(loadConfig({ WORKER_CONCURRENCY: "7" }).concurrency).toBe(7);
  });
});
