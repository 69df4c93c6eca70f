/**
 * Slack and WeCom webhooks against a local receiver: a new group is
 * announced once, a regression once per resolve, a failing receiver is
 * retried, and the webhook's secret never reaches the log.
 */
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { startApiService, type ApiService } from "../../api/service.js";
import { createLogger } from "../../lib/log.js";
import { failedResult } from "../../lib/result.js";
import { eventually } from "../helpers/workerProcess.js";
import { AGENT_TOKEN, DB_KINDS, WORKER_TOKEN, agentEvent, apiConfig, call, databases, type Databases } from "./helpers.js";

interface Received {
  path: string;
  body: { text?: string | { content: string }; msgtype?: string };
}

async function startReceiver() {
  const got: Received[] = [];
  let failSlack = 1;
  const server = http.createServer((req, res) => {
    let data = "";
    req.on("data", (d: Buffer) => (data += d.toString("utf8")));
    req.on("end", () => {
      const path = (req.url ?? "").split("?")[0]!;
      if (path.startsWith("/slack") && failSlack > 0) {
        failSlack--;
        res.writeHead(500).end("oops");
        return;
      }
      got.push({ path, body: JSON.parse(data) as Received["body"] });
      if (path === "/wecom") res.writeHead(200, { "content-type": "application/json" }).end('{"errcode":0,"errmsg":"ok"}');
      else res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as AddressInfo).port;
  return { got, url: `http://127.0.0.1:${port}`, stop: () => new Promise<void>((r) => server.close(() => r())) };
}

const textOf = (r: Received) => (typeof r.body.text === "string" ? r.body.text : (r.body.text?.content ?? ""));

describe.each(DB_KINDS)("webhook notifications on %s", (kind) => {
  let dbs: Databases;
  let api: ApiService;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let log = "";

  beforeAll(async () => {
    dbs = await databases(kind);
    receiver = await startReceiver();
    const destination = new Writable({
      write(chunk: Buffer, _e, cb) {
        log += chunk.toString("utf8");
        cb();
      },
    });
    api = await startApiService(
      apiConfig(await dbs.fresh("notify"), {
        NOTIFY_SLACK_WEBHOOK_URL: `${receiver.url}/slack/T000/B000/XXXSECRETXXX`,
        NOTIFY_WECOM_WEBHOOK_URL: `${receiver.url}/wecom?key=WECOMSECRET`,
      }),
      { logger: createLogger({ level: "info", stdout: false, destination }) },
    );
  });
  afterAll(async () => {
    await api?.stop();
    await receiver?.stop();
    await dbs?.stop();
  });

  async function occurrence(n: number, hash: string) {
    const { json } = await call(api.url, "POST", "/", { token: AGENT_TOKEN, body: agentEvent({ fileUrl: `http://dumps.example/core.n.${n}`, pod: `web-${n}` }) });
    const id: string = json.analysis_id;
    const doc = {
      analysis_id: id,
      ...failedResult("internal_error", "x"),
      error: undefined,
      status: "completed",
      signal: { name: "SIGSEGV", number: 11, code: "SEGV_MAPERR", fault_address: "0x0", description: "Segmentation fault" },
      crash_frame: { index: 0, address: null, function: "crash", args: null, file: "crash.c", line: 7, library: null, inline: false, signal_handler: false },
      signature: { text: "crash ← main", hash, frames: ["crash", "main"] },
      quality: 1,
      attempt: 1,
      worker_id: "w:1",
      event: {
        event_id: "e",
        event_source: "coredog-agent",
        event_time: null,
        coredump_id: json.coredump_id,
        file_url: "http://dumps.example/core",
        file_name: null,
        executable_path: null,
        file_size: null,
        md5: null,
        timestamp: null,
        pod: `web-${n}`,
        namespace: "prod",
        node: null,
        image: "registry/app:1.0",
      },
    };
    expect((await call(api.url, "PUT", `/api/v1/analyses/${id}`, { token: WORKER_TOKEN, body: doc })).status).toBe(201);
    return { id, doc };
  }
  const queued = async () => (await api.db.kysely.selectFrom("notification").select(["kind", "channel"]).orderBy("id").execute()).map((r) => `${r.kind}:${r.channel}`);

  it("announces a new group once (retrying a failing Slack), and a regression once per resolve", async () => {
    const hash = `n${kind}00000000001`;
    const first = await occurrence(1, hash);
    await eventually(() => (receiver.got.length >= 2 ? true : undefined), 30_000, "new-group messages");
    const slack = receiver.got.find((r) => r.path.startsWith("/slack"))!;
    const wecom = receiver.got.find((r) => r.path === "/wecom")!;
    expect(textOf(slack)).toContain("[CoreSight] New crash group: crash ← main");
    expect(textOf(slack)).toContain("SIGSEGV (SEGV_MAPERR) in crash at crash.c:7");
    expect(textOf(slack)).toContain("pod prod/web-1");
    expect(wecom.body.msgtype).toBe("text");
    expect(textOf(wecom)).toContain(`analysis ${first.id}`);

    await occurrence(2, hash);
    // A replaced result of the first occurrence announces nothing either.
    await call(api.url, "PUT", `/api/v1/analyses/${first.id}`, { token: WORKER_TOKEN, body: first.doc });
    expect(await queued()).toEqual(["new:slack", "new:wecom"]);

    await call(api.url, "PATCH", `/api/v1/groups/${hash}`, { token: WORKER_TOKEN, body: { resolved: true } });
    await new Promise((r) => setTimeout(r, 5));
    await occurrence(3, hash);
    await occurrence(4, hash);
    expect(await queued()).toEqual(["new:slack", "new:wecom", "regressed:slack", "regressed:wecom"]);
    await eventually(() => (receiver.got.length >= 4 ? true : undefined), 30_000, "regression messages");
    expect(
      receiver.got
        .slice(2)
        .map(textOf)
        .every((t) => t.startsWith("[CoreSight] Regressed crash group")),
    ).toBe(true);

    await eventually(
      async () => ((await api.db.kysely.selectFrom("notification").select("id").where("sent_at", "is", null).execute()).length === 0 ? true : undefined),
      30_000,
      "all sent",
    );
    expect(log).toContain('"msg":"notification failed; retrying"');
    expect(log).not.toContain("XXXSECRETXXX");
    expect(log).not.toContain("WECOMSECRET");
  });
});
