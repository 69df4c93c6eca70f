/**
 * createLogger: real JSON lines written to a real file (and to a capture
 * destination), read back; no secret may reach either, wherever it hides.
 */
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { createLogger, scrubSecrets, type Logger } from "../../lib/log.js";

const TOKEN = "kULT1AKXMu4xxnPNo5fSCW7J5LXx7llJgLh45PCuxOg";
const SIGNATURE = "3f1c0a9e5b7d2c4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e";
const CREDENTIAL = "AKIAIOSFODNN7EXAMPLE%2F20251212%2Fus-east-1%2Fs3%2Faws4_request";
const SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const PRESIGNED =
  "http://127.0.0.1:9000/dumps/coredumps/core.4001?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
  `&X-Amz-Credential=${CREDENTIAL}&X-Amz-Date=20251212T153005Z&X-Amz-Expires=3600` +
  `&X-Amz-Signature=${SIGNATURE}&X-Amz-SignedHeaders=host&x-id=GetObject`;
/** Every piece that must never appear in a line. */
const SECRETS = [TOKEN, SIGNATURE, CREDENTIAL, "AKIAIOSFODNN7EXAMPLE", SECRET_KEY];

let tmp: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-log-test-"));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

let fileNo = 0;
/** A logger writing JSON lines only to a new file under tmp; `lines()` reads them back parsed. */
async function fileLogger(
  opts: { level?: string } = {},
): Promise<{ log: Logger; file: string; text: () => Promise<string>; lines: () => Promise<Array<Record<string, unknown>>> }> {
  const file = path.join(tmp, `nested-${++fileNo}`, "worker.log");
  const log = createLogger({ file, stdout: false, level: opts.level ?? "info" });
  const text = () => fs.readFile(file, "utf8");
  const lines = async () =>
    (await text())
      .split("\n")
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log, file, text, lines };
}

function expectNoSecret(text: string): void {
  for (const s of SECRETS) expect(text).not.toContain(s);
}

describe("scrubSecrets", () => {
  it("removes presigned signature and credential values, keeps the rest of the URL", () => {
    const out = scrubSecrets(`GET ${PRESIGNED} failed`);
    expectNoSecret(out);
    expect(out).toContain("X-Amz-Signature=REDACTED");
    expect(out).toContain("X-Amz-Credential=REDACTED");
    expect(out).toContain("http://127.0.0.1:9000/dumps/coredumps/core.4001?X-Amz-Algorithm=AWS4-HMAC-SHA256");
    expect(out).toContain("X-Amz-Expires=3600");
    expect(out.endsWith(" failed")).toBe(true);
  });

  it("removes bearer tokens and other stores' signatures", () => {
    expect(scrubSecrets(`Authorization: Bearer ${TOKEN}`)).toBe("Authorization: Bearer REDACTED");
    expect(scrubSecrets("https://cos.example.com/k?q-ak=AK&q-signature=abc&x=1")).toBe("https://cos.example.com/k?q-ak=REDACTED&q-signature=REDACTED&x=1");
    expect(scrubSecrets("https://oss.example.com/k?OSSAccessKeyId=AK&Signature=s%2Bg")).toBe("https://oss.example.com/k?OSSAccessKeyId=REDACTED&Signature=REDACTED");
  });

  it("leaves ordinary text alone", () => {
    const s = "download started url=http://minio:9000/dumps/core.1?x-id=GetObject bytes=123";
    expect(scrubSecrets(s)).toBe(s);
  });
});

describe("createLogger writes JSON lines without secrets", () => {
  it("keeps normal fields and the message; time, level and pid are there", async () => {
    const { log, lines, file } = await fileLogger();
    log.info({ analysis_id: "a-123", attempt: 2, bytes: 4096, ok: true, list: ["x", 1] }, "download finished");
    const [line] = await lines();
    expect(line).toMatchObject({ level: 30, pid: process.pid, analysis_id: "a-123", attempt: 2, bytes: 4096, ok: true, list: ["x", 1], msg: "download finished" });
    expect(typeof line!.time).toBe("number");
    // The parent directory was created for us.
    expect((await fs.stat(path.dirname(file))).isDirectory()).toBe(true);
  });

  it("censors a token in an object field, at any depth, whatever its case", async () => {
    const { log, lines, text } = await fileLogger();
    log.info({ token: TOKEN, event: { token: TOKEN, data: { auth: { Token: TOKEN } } }, analysis_id: "a-1" }, "event received");
    log.info({ api: { secretAccessKey: SECRET_KEY, accessKeyId: "AKIAIOSFODNN7EXAMPLE" } }, "s3 client");
    log.info({ nats: { password: "hunter2-secret-pw", secret: "s3cr3t-value" } }, "connect");
    const all = await text();
    expectNoSecret(all);
    expect(all).not.toContain("hunter2-secret-pw");
    expect(all).not.toContain("s3cr3t-value");
    const [first, second] = await lines();
    expect(first).toMatchObject({ token: "REDACTED", event: { token: "REDACTED", data: { auth: { Token: "REDACTED" } } }, analysis_id: "a-1" });
    expect(second).toMatchObject({ api: { secretAccessKey: "REDACTED", accessKeyId: "REDACTED" } });
  });

  it("censors Authorization headers, top level or nested, bearer or not", async () => {
    const { log, lines, text } = await fileLogger();
    log.info({ headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" } }, "request");
    log.info({ req: { method: "PUT", headers: { Authorization: `Bearer ${TOKEN}` } } }, "request");
    log.info({ sink: { http: { request: { headers: { authorization: `Basic ${TOKEN}` } } } } }, "deep request");
    log.warn({ note: `sent Authorization: Bearer ${TOKEN}` }, "free text");
    expectNoSecret(await text());
    const [a, b, c, d] = await lines();
    expect(a).toMatchObject({ headers: { authorization: "REDACTED", "content-type": "application/json" } });
    expect(b).toMatchObject({ req: { method: "PUT", headers: { Authorization: "REDACTED" } } });
    expect(c).toMatchObject({ sink: { http: { request: { headers: { authorization: "REDACTED" } } } } });
    expect(d!.note).toBe("sent Authorization: Bearer REDACTED");
  });

  it("scrubs a presigned URL inside the message, a field, a list and a format argument", async () => {
    const { log, lines, text } = await fileLogger();
    log.info(`downloading ${PRESIGNED} now`);
    log.info({ url: PRESIGNED, urls: [PRESIGNED], event: { data: { file_url: PRESIGNED } } }, "download started");
    log.info("fetching %s (%j)", PRESIGNED, { url: PRESIGNED });
    expectNoSecret(await text());
    const [a, b, c] = await lines();
    expect(a!.msg).toMatch(/^downloading http:\/\/127\.0\.0\.1:9000\/dumps\/coredumps\/core\.4001\?.*X-Amz-Signature=REDACTED.* now$/);
    expect(b!.url).toContain("X-Amz-Signature=REDACTED");
    expect((b!.urls as string[])[0]).toContain("X-Amz-Credential=REDACTED");
    expect(b).toMatchObject({ event: { data: { file_url: expect.stringContaining("/dumps/coredumps/core.4001?") } } });
    expect(c!.msg).toContain("fetching http://127.0.0.1:9000/dumps/coredumps/core.4001?");
  });

  it("scrubs errors: the message, the stack and the cause", async () => {
    const { log, lines, text } = await fileLogger();
    const cause = new Error(`connect failed for ${PRESIGNED}`);
    const err = new Error(`GET ${PRESIGNED}: 403`, { cause });
    log.error({ err }, "download failed");
    log.error(err);
    log.error({ failure: { err } }, "nested");
    log.error({ err });
    class DownloadError extends Error {
      readonly code = "download_failed";
    }
    log.warn({ err: new DownloadError(`HEAD ${PRESIGNED}`) }, "typed");
    expectNoSecret(await text());
    const [a, b, c, d, e] = await lines();
    expect(d!.msg).toMatch(/^GET http:\/\/127\.0\.0\.1:9000\/.*X-Amz-Signature=REDACTED.*: 403$/);
    expect(e!.err).toMatchObject({ type: "DownloadError", code: "download_failed", message: expect.stringContaining("X-Amz-Credential=REDACTED") });
    expect(a!.msg).toBe("download failed");
    expect(a!.err).toMatchObject({ type: "Error", message: expect.stringContaining("X-Amz-Signature=REDACTED") });
    expect(String((a!.err as { stack: string }).stack)).toContain("log.test.ts");
    // The message pino takes from a lone error is scrubbed too.
    expect(b!.msg).toContain("X-Amz-Signature=REDACTED");
    expect(c).toMatchObject({ failure: { err: { message: expect.stringContaining("GET http://127.0.0.1:9000/") } } });
  });

  it("scrubs a child logger's bindings", async () => {
    const { log, lines, text } = await fileLogger();
    const child = log.child({ analysis_id: "a-9", url: PRESIGNED, token: TOKEN });
    child.info({ stage: "download" }, "started");
    child.child({ attempt: 2, headers: { authorization: `Bearer ${TOKEN}` }, file_url: PRESIGNED }).info("grandchild");
    expectNoSecret(await text());
    const [line, grand] = await lines();
    expect(line).toMatchObject({ analysis_id: "a-9", stage: "download", msg: "started", token: "REDACTED" });
    expect(line!.url).toContain("X-Amz-Signature=REDACTED");
    expect(grand).toMatchObject({ analysis_id: "a-9", attempt: 2, headers: { authorization: "REDACTED" }, msg: "grandchild" });
  });

  it("renders values with toJSON as JSON would (dates, URL objects)", async () => {
    const { log, lines, text } = await fileLogger();
    const at = new Date("2025-12-12T15:30:05.000Z");
    log.info({ at, url: new URL(PRESIGNED), n: null, nothing: undefined }, "values");
    expectNoSecret(await text());
    const [line] = await lines();
    expect(line!.at).toBe("2025-12-12T15:30:05.000Z");
    expect(line!.url).toContain("X-Amz-Signature=REDACTED");
    expect(line!.n).toBeNull();
    expect("nothing" in line!).toBe(false);
  });

  it("does not change the caller's objects", async () => {
    const { log } = await fileLogger();
    const obj = { token: TOKEN, headers: { authorization: `Bearer ${TOKEN}` }, url: PRESIGNED };
    log.info(obj, "x");
    expect(obj).toEqual({ token: TOKEN, headers: { authorization: `Bearer ${TOKEN}` }, url: PRESIGNED });
  });

  it("honours the level", async () => {
    const { log, lines } = await fileLogger({ level: "warn" });
    log.info("hidden");
    log.debug("hidden");
    log.warn("shown");
    log.error("shown too");
    expect((await lines()).map((l) => [l.level, l.msg])).toEqual([
      [40, "shown"],
      [50, "shown too"],
    ]);
  });

  it("level silent writes nothing", async () => {
    const { log, text } = await fileLogger({ level: "silent" });
    log.fatal("nothing");
    log.error("nothing");
    expect(await text()).toBe("");
  });
});

describe("the destination option", () => {
  function capture(): { stream: Writable; lines: Array<Record<string, unknown>> } {
    const lines: Array<Record<string, unknown>> = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString("utf8").split("\n")) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    return { stream, lines };
  }

  it("receives the same scrubbed lines as the file", async () => {
    const file = path.join(tmp, "both.log");
    const cap = capture();
    const log = createLogger({ file, stdout: false, destination: cap.stream, base: { service: "test" } });
    log.info({ url: PRESIGNED, token: TOKEN }, "both");
    await new Promise<void>((r) => setImmediate(r));
    const fromFile = (await fs.readFile(file, "utf8")).trim();
    expectNoSecret(fromFile);
    expectNoSecret(JSON.stringify(cap.lines));
    expect(cap.lines).toHaveLength(1);
    expect(cap.lines[0]).toEqual(JSON.parse(fromFile));
    // base replaces the default { pid }.
    expect(cap.lines[0]).toMatchObject({ service: "test", token: "REDACTED", msg: "both" });
    expect(cap.lines[0]!.pid).toBeUndefined();
  });

  it("stdout: false and no file writes nowhere, without throwing", () => {
    const log = createLogger({ stdout: false });
    expect(() => log.info({ token: TOKEN }, "into the void")).not.toThrow();
  });
});
