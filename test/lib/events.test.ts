import { describe, expect, it } from "@jest/globals";
import { PermanentError } from "../../lib/errors.js";
import { analysisIdOf, eventContext, parseEvent, redactEvent, type CoredumpEvent } from "../../lib/events.js";
import { failedResult } from "../../lib/result.js";
import { resultDocument } from "../../lib/results/document.js";

/** The example from CORESIGHT_INTEGRATION.md, verbatim. */
const GUIDE_EXAMPLE = `{
  "specversion": "1.0",
  "type": "coredog.coredump.uploaded",
  "source": "coredog-agent",
  "id": "coredog-1765567205-12345",
  "time": "2025-12-12T15:30:05Z",
  "datacontenttype": "application/json",
  "data": {
    "coredump_id": 0,
    "file_url": "https://cos.ap-nanjing.myqcloud.com/dumps/core.bash.123456",
    "executable_path": "example-pod-abc123",
    "file_size": 52428800,
    "md5": "",
    "image": "ubuntu:22.04",
    "timestamp": "2025-12-12T15:30:05Z",
    "pod_name": "example-pod-abc123",
    "pod_namespace": "default",
    "node_name": "node-1"
  }
}`;

const TOKEN = "kULT1AKXMu4xxnPNo5fSCW7J5LXx7llJgLh45PCuxOg";
const SIGNATURE = "3f1c0ffee0ddba11deadbeefcafe0123456789abcdef0123456789abcdef0123";
const PRESIGNED =
  "http://coredumps.cos.ap-nanjing.myqcloud.com/coredog/core.bash.4242.node7.1765567205" +
  "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20251212%2Fap-nanjing%2Fs3%2Faws4_request" +
  `&X-Amz-Date=20251212T153005Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=${SIGNATURE}`;

/** What a real agent sends: token in the body, node_ip, presigned URL, an extra field. */
function agentEvent(over: Record<string, unknown> = {}, data: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    specversion: "1.0",
    type: "coredog.coredump.uploaded",
    source: "coredog-agent",
    id: "coredog-1765567205-4242",
    time: "2025-12-12T15:30:05Z",
    datacontenttype: "application/json",
    token: TOKEN,
    ...over,
    data: {
      coredump_id: 0,
      file_url: PRESIGNED,
      file_name: "core.bash.4242.node7.1765567205",
      executable_path: "/usr/bin/bash",
      file_size: 1234567,
      md5: "",
      image: "ubuntu:22.04",
      timestamp: "2025-12-12T15:30:05Z",
      pod_name: "web-7d9f-abc",
      pod_namespace: "prod",
      node_ip: "10.0.0.7",
      ...data,
    },
  };
}

const parse = (o: unknown) => parseEvent(JSON.stringify(o));

function invalid(raw: string | Uint8Array): PermanentError {
  try {
    parseEvent(raw);
  } catch (e: unknown) {
    expect(e).toBeInstanceOf(PermanentError);
    expect((e as PermanentError).code).toBe("invalid_event");
    return e as PermanentError;
  }
  throw new Error(`expected ${String(raw).slice(0, 80)} to be rejected`);
}

describe("parseEvent", () => {
  it("accepts the integration guide's example", () => {
    const ev = parseEvent(GUIDE_EXAMPLE);
    expect(ev.id).toBe("coredog-1765567205-12345");
    expect(ev.data.file_size).toBe(52428800);
    expect(ev.data.md5).toBe("");
    expect(eventContext(ev)).toEqual({
      event_id: "coredog-1765567205-12345",
      event_source: "coredog-agent",
      event_time: "2025-12-12T15:30:05Z",
      coredump_id: 0,
      file_url: "https://cos.ap-nanjing.myqcloud.com/dumps/core.bash.123456",
      file_name: null,
      executable_path: "example-pod-abc123",
      file_size: 52428800,
      md5: null,
      timestamp: "2025-12-12T15:30:05Z",
      pod: "example-pod-abc123",
      namespace: "default",
      node: "node-1",
      image: "ubuntu:22.04",
    });
  });

  it("accepts bytes (a NATS message body), with a UTF-8 BOM", () => {
    const bytes = new TextEncoder().encode("\uFEFF" + GUIDE_EXAMPLE);
    expect(parseEvent(bytes).data.pod_name).toBe("example-pod-abc123");
  });

  it('accepts a real agent\'s event: token in the body, node_ip, md5 "", extra fields at both levels', () => {
    const ev = parse(agentEvent({ traceparent: "00-abc-def-01" }, { container_name: "web", restart_count: 3 }));
    expect(ev.token).toBe(TOKEN);
    expect(ev.data.node_name).toBeUndefined();
    expect(eventContext(ev).node).toBe("10.0.0.7");
    expect(ev.traceparent).toBe("00-abc-def-01");
    expect(ev.data.container_name).toBe("web");
  });

  it("accepts an event with only the required fields, and null for optional ones", () => {
    const ev = parse({
      specversion: "1.0",
      type: "coredog.coredump.uploaded",
      source: "other-collector",
      id: "x1",
      data: { file_url: "cfs:///mnt/cfs/core.app.1", pod_name: null, md5: null, file_size: null },
    });
    expect(ev.data.coredump_id).toBe(0);
    expect(ev.data.md5).toBe("");
    const ctx = eventContext(ev);
    expect(ctx).toMatchObject({ event_time: null, pod: null, node: null, file_size: null, md5: null, file_url: "cfs:///mnt/cfs/core.app.1" });
  });

  it("reads a numeric-string file_size as a number and lower-cases md5", () => {
    const ev = parse(agentEvent({}, { file_size: "52428800", md5: "D41D8CD98F00B204E9800998ECF8427E" }));
    expect(ev.data.file_size).toBe(52428800);
    expect(ev.data.md5).toBe("d41d8cd98f00b204e9800998ecf8427e");
  });

  it("reads a numeric timestamp or name as text, and ignores the token's type", () => {
    const ev = parse(agentEvent({ token: { nested: TOKEN } }, { timestamp: 1765567205, node_ip: 167772167 }));
    expect(ev.data.timestamp).toBe("1765567205");
    expect(eventContext(ev).node).toBe("167772167");
    expect(JSON.stringify(redactEvent(ev))).not.toContain(TOKEN);
    expect(invalid(JSON.stringify(agentEvent({}, { pod_name: { name: "x" } }))).message).toMatch(/data\.pod_name: expected a string/);
  });

  it("decodes data sent as a JSON string", () => {
    const o = agentEvent();
    const ev = parse({ ...o, data: JSON.stringify(o.data) });
    expect(ev.data.pod_name).toBe("web-7d9f-abc");
  });

  it.each([
    ["no data", { ...agentEvent(), data: undefined }, /\bdata: required/],
    ["no file_url", agentEvent({}, { file_url: undefined }), /data\.file_url: required/],
    ["an empty file_url", agentEvent({}, { file_url: "  " }), /data\.file_url: must not be empty/],
    ["a wrong type", agentEvent({ type: "coredog.coredump.deleted" }), /\btype: .*coredog\.coredump\.uploaded/],
    ["a wrong specversion", agentEvent({ specversion: "0.3" }), /\bspecversion:/],
    ["no id", agentEvent({ id: undefined }), /(^|; |: )id: required/],
    ["a negative file_size", agentEvent({}, { file_size: -1 }), /data\.file_size: .*>=0/],
    ["a non-numeric file_size", agentEvent({}, { file_size: "50MB" }), /data\.file_size: expected a non-negative integer/],
    ["a malformed md5", agentEvent({}, { md5: "xyz" }), /data\.md5: expected 32 hex digits/],
    ["data that is not an object", { ...agentEvent(), data: 42 }, /\bdata: /],
    ["an unsafe CoreSight job id", agentEvent({}, { analysis_id: "../../etc/passwd" }), /data\.analysis_id: must match/],
  ])("rejects an event with %s, naming the field", (_name, o, re) => {
    expect(invalid(JSON.stringify(o)).message).toMatch(re);
  });

  it("names every offending field at once", () => {
    const err = invalid(JSON.stringify(agentEvent({ type: "x", source: "" }, { file_url: undefined })));
    expect(err.message).toMatch(/\btype:/);
    expect(err.message).toMatch(/\bsource:/);
    expect(err.message).toMatch(/data\.file_url:/);
  });

  it("rejects bytes that are not JSON, without quoting them", () => {
    const err = invalid(`{"token":"${TOKEN}", "data": `);
    expect(err.message).toMatch(/^invalid event: not JSON/);
    expect(err.message).not.toContain(TOKEN);
    expect(invalid("").message).toMatch(/not JSON/);
    expect(invalid(new Uint8Array([0xff, 0xfe, 0x00])).message).toMatch(/not JSON/);
  });

  it.each([
    ["an unquoted secret value", `{"token": ${TOKEN}}`],
    ["an unquoted secret after a quoted field", `{"type": "x", "token": ${TOKEN}, "data": {}}`],
    ["a secret before a stray character", `{"token": "${TOKEN}" x}`],
    ["a secret in a cut string", `{"token": "${TOKEN}`],
  ])("never echoes any part of %s (issue 9)", (_name, raw) => {
    const msg = invalid(raw).message;
    for (let i = 0; i + 4 <= TOKEN.length; i++) expect(msg).not.toContain(TOKEN.slice(i, i + 4));
    expect(msg).toMatch(/^invalid event: not JSON \(\d+ characters\): (syntax error|unexpected end of input)/);
  });

  it.each([
    ["a JSON array", "[1,2]", /\(root\): expected a CloudEvent JSON object, got an array/],
    ["JSON null", "null", /got null/],
    ["a JSON string", '"hello"', /got string/],
  ])("rejects %s at the root", (_name, raw, re) => {
    expect(invalid(raw).message).toMatch(re);
  });
});

describe("analysisIdOf", () => {
  it("takes a CoreSight-assigned id from the message header first, and checks it", () => {
    const ev = parse(agentEvent({}, { analysis_id: "job-in-data" }));
    expect(analysisIdOf(ev, { headerId: "job-42" })).toBe("job-42");
    expect(analysisIdOf(ev, { headerId: "" })).toBe("job-in-data");
    expect(analysisIdOf(ev, { headerId: null })).toBe("job-in-data");
    expect(() => analysisIdOf(ev, { headerId: "../../etc/passwd" })).toThrow(/CoreSight-Analysis-Id/);
  });

  it("is deterministic: a redelivery of the same bytes gets the same id", () => {
    const raw = JSON.stringify(agentEvent());
    const id = analysisIdOf(parseEvent(raw));
    expect(id).toMatch(/^a-[0-9a-f]{32}$/);
    expect(analysisIdOf(parseEvent(raw))).toBe(id);
  });

  it("ignores the URL's query string (a re-presigned URL for the same object)", () => {
    const a = analysisIdOf(parse(agentEvent()));
    const b = analysisIdOf(parse(agentEvent({}, { file_url: PRESIGNED.replace(SIGNATURE, "0".repeat(64)) })));
    const c = analysisIdOf(parse(agentEvent({}, { file_url: PRESIGNED.split("?")[0] })));
    expect(b).toBe(a);
    expect(c).toBe(a);
  });

  it("gives two dumps reported in the same second (same CoreDog id) different ids", () => {
    const first = parse(agentEvent({}, { file_url: "http://b.cos.example.com/coredog/core.app.1.n.1765567205", file_name: "core.app.1.n.1765567205" }));
    const second = parse(agentEvent({}, { file_url: "http://b.cos.example.com/coredog/core.app.2.n.1765567205", file_name: "core.app.2.n.1765567205" }));
    expect(first.id).toBe(second.id);
    expect(analysisIdOf(first)).not.toBe(analysisIdOf(second));
  });

  it("differs by md5, source and id", () => {
    const base = analysisIdOf(parse(agentEvent()));
    expect(analysisIdOf(parse(agentEvent({}, { md5: "d41d8cd98f00b204e9800998ecf8427e" })))).not.toBe(base);
    expect(analysisIdOf(parse(agentEvent({ source: "coredog-agent-2" })))).not.toBe(base);
    expect(analysisIdOf(parse(agentEvent({ id: "coredog-1765567206-4242" })))).not.toBe(base);
  });

  it("does not depend on fields that vary between deliveries of one dump (time, token, extras)", () => {
    const base = analysisIdOf(parse(agentEvent()));
    expect(analysisIdOf(parse(agentEvent({ time: "2030-01-01T00:00:00Z", token: "other", extra: 1 })))).toBe(base);
  });

  it("uses a CoreSight-assigned job id when the event carries one", () => {
    expect(analysisIdOf(parse(agentEvent({}, { analysis_id: "job-42" })))).toBe("job-42");
    expect(analysisIdOf(parse(agentEvent({}, { job_id: 1001 })))).toBe("1001");
    // 0 and "" mean "not assigned", like coredump_id 0.
    expect(analysisIdOf(parse(agentEvent({}, { job_id: 0, analysis_id: "" })))).toMatch(/^a-/);
    // coredump_id names the dump, not the job.
    expect(analysisIdOf(parse(agentEvent({}, { coredump_id: 7 })))).toMatch(/^a-/);
  });

  it("refuses an unsafe assigned id even on an event built without parseEvent", () => {
    const ev = parse(agentEvent()) as CoredumpEvent;
    const forged = { ...ev, data: { ...ev.data, analysis_id: "a/b" } } as CoredumpEvent;
    expect(() => analysisIdOf(forged)).toThrow(/invalid event: data\.analysis_id/);
  });
});

describe("secrets", () => {
  it("the agent's token and the URL signature never appear in eventContext, redactEvent or resultDocument", () => {
    const ev = parse(agentEvent({}, { nested: { token: TOKEN, api_token: TOKEN } }));
    const ctx = eventContext(ev);
    const redacted = redactEvent(ev);
    const doc = resultDocument(failedResult("download_failed", `GET ${PRESIGNED} failed`), ctx, {
      analysis_id: analysisIdOf(ev),
      attempt: 1,
      worker: "host:1",
    });
    for (const out of [ctx, redacted, doc]) {
      const text = JSON.stringify(out);
      expect(text).not.toContain(TOKEN);
      expect(text).not.toContain(SIGNATURE);
    }
    expect(ctx.file_url).toBe("http://coredumps.cos.ap-nanjing.myqcloud.com/coredog/core.bash.4242.node7.1765567205");
    // The log form keeps what helps an operator: the object and the non-secret parameters.
    expect(String((redacted.data as Record<string, unknown>).file_url)).toContain("X-Amz-Expires=3600");
    expect(redacted.id).toBe(ev.id);
    expect("token" in redacted).toBe(false);
  });

  it("eventContext drops user info from a URL", () => {
    const ev = parse(agentEvent({}, { file_url: "https://user:pa55@dumps.example.com/core.1?sig=abc" }));
    expect(eventContext(ev).file_url).toBe("https://dumps.example.com/core.1");
  });
});
