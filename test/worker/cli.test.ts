/**
 * The shipped binary, `node dist/bundle/cli.js` (built by `make test` before
 * jest): help texts, exit codes, configuration errors on stderr.
 */
import { beforeAll, describe, expect, it } from "@jest/globals";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { execa } from "execa";
import { CONFIG_VARIABLES } from "../../lib/config.js";
import { requireFixture } from "../helpers/fixtures.js";
import { cliPath, repoRoot } from "../helpers/workerProcess.js";

const COMMANDS = ["analyze", "parse", "run", "replay", "symbols", "schema"];

/** A clean environment: nothing from the developer's shell may change the outcome. */
const BASE_ENV = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/tmp" };

async function cli(args: string[], env: Record<string, string> = {}) {
  const r = await execa(process.execPath, [cliPath, ...args], {
    env: { ...BASE_ENV, ...env },
    extendEnv: false,
    reject: false,
    cwd: repoRoot,
    stdin: "ignore",
    // A command that unexpectedly starts the worker must not hang the suite.
    timeout: 60_000,
  });
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr, timedOut: r.timedOut };
}

beforeAll(() => {
  if (!fs.existsSync(cliPath)) {
    throw new Error(`${path.relative(repoRoot, cliPath)} is missing: build it with \`npx tsc -p tsconfig.build.json\` (make test does this before jest)`);
  }
});

describe("coresight-worker --help", () => {
  it("lists every command with its summary and the exit codes", async () => {
    const r = await cli(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: coresight-worker <command>/);
    for (const name of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^  ${name} +\\S`, "m"));
    expect(r.stdout).toMatch(/Exit codes: 0 ok.*2 usage error, 3 configuration error/s);
    expect(r.stderr).toBe("");
  });

  it("-h and help do the same; no command at all prints it and exits 2", async () => {
    const full = (await cli(["--help"])).stdout;
    expect(await cli(["-h"])).toMatchObject({ code: 0, stdout: full });
    expect(await cli(["help"])).toMatchObject({ code: 0, stdout: full });
    expect(await cli([])).toMatchObject({ code: 2, stdout: full });
  });

  it("--version prints the version", async () => {
    const r = await cli(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^coresight-worker \d+\.\d+\.\d+$/);
  });
});

describe("<command> --help", () => {
  it.each(COMMANDS)("%s --help exits 0 with its usage", async (name) => {
    const r = await cli([name, "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: coresight-worker ${name}\\b`));
    expect(r.stderr).toBe("");
    // -h works as well, anywhere after the command.
    expect((await cli([name, "x", "-h"])).stdout).toBe(r.stdout);
  });

  it("run --help lists every configuration variable", async () => {
    const r = await cli(["run", "--help"]);
    for (const [name] of CONFIG_VARIABLES) expect(r.stdout).toContain(name);
  });
});

describe("exit codes", () => {
  it("an unknown command exits 2, names it and shows the commands", async () => {
    const r = await cli(["analyse", "core"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "analyse"');
    expect(r.stderr).toContain("  analyze ");
    expect(r.stdout).toBe("");
  });

  it("an unknown option exits 2 and points at the command's help", async () => {
    const r = await cli(["analyze", "/nonexistent", "--bogus"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option --bogus");
    expect(r.stderr).toContain("coresight-worker analyze --help");
  });

  it.each([
    [{ WORKER_CONCURRENCY: "abc" }, "WORKER_CONCURRENCY", '"abc"'],
    [{ RESULT_SINKS: "http" }, "CORESIGHT_API_URL", "RESULT_SINKS"],
    // No sink at all: refused, rather than results kept in a directory that vanishes with the pod.
    [{}, "RESULT_SINKS", "CORESIGHT_API_URL"],
    [{ METRICS_PORT: "99999" }, "METRICS_PORT", '"99999"'],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL", '"loud"'],
  ])("run with %j exits 3 and names the variable", async (env, variable, shown) => {
    const r = await cli(["run"], env);
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`configuration error: ${variable}:`);
    expect(r.stderr).toContain(shown);
    // One clear line, no stack trace.
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("schema prints the result JSON Schema", async () => {
    const r = await cli(["schema"]);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(schema.$schema).toMatch(/^https:\/\/json-schema\.org\//);
    expect(schema.type).toBe("object");
    expect(Object.keys(schema.properties as object)).toEqual(expect.arrayContaining(["schema_version", "status"]));
  });

  it("analyze of a missing core exits 5 and names the file", async () => {
    const r = await cli(["analyze", "/nonexistent"]);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain("/nonexistent");
    expect(r.stdout).toBe("");
  });

  it("analyze with a mistyped short option exits 2, not 5", async () => {
    const r = await cli(["analyze", "-j", "/nonexistent"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option -j");
  });
});

describe("start-up cost of help", () => {
  /** The modules a CLI run loads, from a module.registerHooks() load hook in the child. */
  async function loadedModules(args: string[]): Promise<string[]> {
    const hook = `import { registerHooks } from "node:module";
const seen = [];
registerHooks({ load(url, ctx, next) { seen.push(url); return next(url, ctx); } });
process.on("exit", () => process.stderr.write("LOADED " + JSON.stringify(seen) + "\\n"));`;
    const r = await execa(process.execPath, ["--import", `data:text/javascript,${encodeURIComponent(hook)}`, cliPath, ...args], {
      env: BASE_ENV,
      extendEnv: false,
      reject: false,
      cwd: repoRoot,
      stdin: "ignore",
    });
    const line = r.stderr.split("\n").find((l) => l.startsWith("LOADED "));
    if (!line) throw new Error(`no module list from ${args.join(" ")}: ${r.stderr}`);
    return JSON.parse(line.slice("LOADED ".length)) as string[];
  }

  /** The source modules inside the bundle's chunks that were loaded (esbuild's metafile, written by scripts/bundle.mjs). */
  function bundledSources(loaded: string[]): string[] {
    const meta = JSON.parse(fs.readFileSync(path.join(repoRoot, "dist/bundle.meta.json"), "utf8")) as { outputs: Record<string, { inputs: Record<string, unknown> }> };
    const chunks = loaded.filter((u) => u.includes("/dist/bundle/")).map((u) => path.relative(repoRoot, new URL(u).pathname));
    return chunks.flatMap((c) => {
      const out = meta.outputs[c];
      if (!out) throw new Error(`${c} is not in dist/bundle.meta.json: rebuild (make build)`);
      return Object.keys(out.inputs);
    });
  }

  // What the help must not cost is module loading (zod, execa and the AWS SDK
  // were most of `--help`'s time); the time itself is measured in bench/, not here.
  it.each([["--help"], ["analyze", "--help"], ["symbols", "--help"]].map((a) => [a.join(" "), a] as const))("%s loads no dependency and no analysis code", async (_label, args) => {
    const loaded = await loadedModules([...args]);
    expect(loaded.filter((u) => u.includes("/node_modules/"))).toEqual([]);
    const sources = bundledSources(loaded);
    expect(sources.length).toBeGreaterThan(0); // the bundle's own chunks were seen: the check below is not empty by accident
    expect(sources.filter((s) => s.includes("node_modules/") || s.startsWith("dist/lib/"))).toEqual([]);
  });

  it("analyze of a core without a network source loads no network module (node:http, https, tls, dns)", async () => {
    const f = requireFixture("null-deref");
    const loaded = await loadedModules(["analyze", f.core, "--exe", f.exe]);
    expect(loaded).toContain("node:child_process"); // the hook saw the run's built-ins (gdb was started)
    expect(loaded.filter((u) => /^node:(http|https|tls|dns)(\/|$)/.test(u))).toEqual([]);
  });

  it("analyze of a local core loads no result schema, registry client or HTTP client (they are for other paths)", async () => {
    const f = requireFixture("null-deref");
    const sources = bundledSources(await loadedModules(["analyze", f.core, "--exe", f.exe]));
    expect(sources).toContain("dist/lib/analyze.js"); // the analysis ran from the bundle: the check below is not empty by accident
    expect(sources.filter((s) => ["dist/lib/result.js", "dist/lib/registry/client.js", "dist/lib/storage/fetchToFile.js", "dist/lib/storage/plainGet.js"].includes(s))).toEqual([]);
  });

  it("the bundle holds the dependencies (analyze loads them from it, not from node_modules)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "coresight-bundle-"));
    const loaded = await loadedModules(["analyze", path.join(dir, "missing-core")]);
    expect(loaded.filter((u) => u.includes("/node_modules/"))).toEqual([]);
    const sources = bundledSources(loaded);
    expect(sources.some((s) => s.includes("node_modules/zod/"))).toBe(true);
    expect(sources.some((s) => s.startsWith("dist/lib/"))).toBe(true);
  });
});

describe("a reader that stops early", () => {
  it("parse --json --full | head: exits 0 with nothing on stderr once the pipe closes", async () => {
    // Enough output to fill the pipe many times over: 4,000 threads of one corpus backtrace.
    const one = fs.readFileSync(path.join(repoRoot, "fixtures/backtraces/ceph-rcache-signal11-wrapped.txt"), "utf8");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "coresight-epipe-"));
    const input = path.join(dir, "bt.txt");
    fs.writeFileSync(
      input,
      Array.from({ length: 4000 }, (_, i) => `Thread ${i + 1} (LWP ${i + 100}):\n#0  0x1 in f${i} (a=1) at x.c:${i + 1}\n#1  0x2 in main () at x.c:1\n`).join("\n") + one,
    );
    try {
      const child = execa(process.execPath, [cliPath, "parse", "--json", "--full", input], {
        env: BASE_ENV,
        extendEnv: false,
        reject: false,
        stdin: "ignore",
        buffer: false,
        timeout: 60_000,
      });
      let stderr = "";
      child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
      await new Promise<void>((resolve) => child.stdout?.once("data", () => resolve()));
      child.stdout?.destroy();
      const r = await child;
      expect({ code: r.exitCode, stderr, timedOut: r.timedOut }).toEqual({ code: 0, stderr: "", timedOut: false });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
