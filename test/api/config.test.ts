import { describe, expect, it } from "@jest/globals";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ConfigError, loadApiConfig } from "../../lib/config.js";

const T1 = "agent-token-aaaaaaaaaaaaaaaa";
const T2 = "worker-token-bbbbbbbbbbbbbbb";

function errorOf(env: Record<string, string>): ConfigError {
  try {
    loadApiConfig(env);
  } catch (e: unknown) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("loadApiConfig", () => {
  it("has the documented defaults", () => {
    const c = loadApiConfig({});
    expect(c.listen).toEqual({ host: "0.0.0.0", port: 8000 });
    expect(c.database).toEqual({ kind: "sqlite", file: path.resolve("coresight.db") });
    expect(c.nats).toMatchObject({ url: "nats://127.0.0.1:4222", stream: "COREDOG", subject: "coredog.coredump.uploaded" });
    expect(c.agentTokens).toEqual([]);
    expect(Object.isFrozen(c.listen)).toBe(true);
  });

  it("reads comma lists and *_FILE variants (a mounted secret, one token per line)", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "api-config-"));
    const file = path.join(dir, "tokens");
    await fs.writeFile(file, `${T2}\nworker-token-ccccccccccccccc\n`);
    const c = loadApiConfig({
      CORESIGHT_AGENT_TOKENS: ` ${T1} , agent-token-dddddddddddddddd`,
      CORESIGHT_WORKER_TOKENS_FILE: file,
      DATABASE_URL: "postgres://u:p@db:5432/cs",
      API_LISTEN: "127.0.0.1:9000",
    });
    expect(c.agentTokens).toEqual([T1, "agent-token-dddddddddddddddd"]);
    expect(c.workerTokens).toEqual([T2, "worker-token-ccccccccccccccc"]);
    expect(c.database).toEqual({ kind: "postgres", url: "postgres://u:p@db:5432/cs" });
    expect(c.listen).toEqual({ host: "127.0.0.1", port: 9000 });
    await fs.rm(dir, { recursive: true });
  });

  it.each([
    [{ API_LISTEN: "localhost:http" }, "API_LISTEN"],
    [{ DATABASE_URL: "mysql://u:secret@h/db" }, "DATABASE_URL"],
    [{ CORESIGHT_AGENT_TOKENS: "short" }, "CORESIGHT_AGENT_TOKENS"],
    [{ CORESIGHT_READ_TOKENS_FILE: "/nonexistent/tokens" }, "CORESIGHT_READ_TOKENS_FILE"],
    [{ CORESIGHT_AGENT_TOKENS: T1, CORESIGHT_WORKER_TOKENS: T1 }, "CORESIGHT_WORKER_TOKENS"],
    [{ API_MAX_BODY_BYTES: "1e6" }, "API_MAX_BODY_BYTES"],
    [{ NATS_ACK_WAIT_MS: "x" }, "NATS_ACK_WAIT_MS"],
  ])("a bad value names its variable: %j", (env, variable) => {
    const e = errorOf(env);
    expect(e.variable).toBe(variable);
    expect(e.message.startsWith(`${variable}: `)).toBe(true);
    // Neither a token nor a database password is quoted back.
    expect(e.message).not.toContain("secret");
    expect(e.message).not.toContain(T1);
    expect(e.message).not.toContain("short");
  });
});
