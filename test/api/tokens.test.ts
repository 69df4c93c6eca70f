/**
 * Tokens made by `coresight-worker token` and scripts/init_auth.sh (the
 * guide's step 1), used by a real API against the same database.
 */
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { startApiService, type ApiService } from "../../api/service.js";
import { createToken, revokeToken } from "../../api/tokens.js";
import { createLogger } from "../../lib/log.js";
import { cliPath, repoRoot } from "../helpers/workerProcess.js";
import { DB_KINDS, agentEvent, apiConfig, call, databases, postAsAgent, type Databases } from "./helpers.js";

const run = promisify(execFile);
const quiet = createLogger({ level: "silent", stdout: false });

describe("init_auth.sh and coresight-worker token (SQLite file)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-tokens-"));
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it("prints `Agent Token: <token>`; the API takes it from CoreDog; revoke ends it; the database holds no clear token", async () => {
    const env = { PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ""}`, DATABASE_URL: `sqlite:${path.join(dir, "c.db")}` };
    const { stdout } = await run("bash", [path.join(repoRoot, "scripts/init_auth.sh")], { env, cwd: dir });
    const agent = /^Agent Token: ([A-Za-z0-9_-]{43})$/m.exec(stdout)?.[1];
    const worker = /^Worker Token: ([A-Za-z0-9_-]{43})$/m.exec(stdout)?.[1];
    expect(agent).toBeDefined();
    expect(worker).toBeDefined();

    const api = await startApiService(apiConfig(env.DATABASE_URL, { CORESIGHT_AGENT_TOKENS: "", CORESIGHT_WORKER_TOKENS: "", CORESIGHT_READ_TOKENS: "" }), { logger: quiet });
    try {
      const res = await postAsAgent(api.url, agentEvent({ fileUrl: "http://dumps.example/core.tok.1", token: agent! }), agent!);
      expect(res.status).toBe(202);
      expect((await call(api.url, "GET", "/api/v1/analyses", { token: worker! })).status).toBe(200);
      expect((await call(api.url, "GET", "/api/v1/analyses", { token: agent! })).status).toBe(403);

      const list = await run(process.execPath, [cliPath, "token", "list"], { env });
      expect(list.stdout).not.toContain(agent!);
      const id = /^(tok_[0-9a-f]+)\s+agent\s/m.exec(list.stdout)?.[1];
      expect(id).toBeDefined();
      await run(process.execPath, [cliPath, "token", "revoke", id!], { env });
      expect((await postAsAgent(api.url, agentEvent({ fileUrl: "http://dumps.example/core.tok.2", token: agent! }), agent!)).status).toBe(401);
      const unknown = await run(process.execPath, [cliPath, "token", "revoke", id!], { env }).catch((e: { code: number; stderr: string }) => e);
      expect(unknown).toMatchObject({ code: 2 });
    } finally {
      await api.stop();
    }
    const raw = await fs.readFile(path.join(dir, "c.db"));
    expect(raw.includes(Buffer.from(agent!))).toBe(false);
    expect(raw.includes(Buffer.from(worker!))).toBe(false);
  });
});

describe.each(DB_KINDS)("stored tokens on %s", (kind) => {
  let dbs: Databases;
  let api: ApiService;
  beforeAll(async () => {
    dbs = await databases(kind);
    api = await startApiService(apiConfig(await dbs.fresh("tokens")), { logger: quiet });
  });
  afterAll(async () => {
    await api?.stop();
    await dbs?.stop();
  });

  it("a created read token reads, and is refused once revoked", async () => {
    const { token, row } = await createToken(api.db.kysely, "read", "dashboard");
    expect((await call(api.url, "GET", "/api/v1/groups", { token })).status).toBe(200);
    expect((await call(api.url, "PATCH", "/api/v1/groups/x", { token, body: { resolved: true } })).status).toBe(403);
    expect(await revokeToken(api.db.kysely, row.token_id)).toBe(true);
    expect((await call(api.url, "GET", "/api/v1/groups", { token })).status).toBe(401);
  });
});
