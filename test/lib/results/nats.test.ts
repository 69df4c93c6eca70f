/**
 * The nats sink with an in-test publish function (the real NATS round trip is
 * covered by the queue tests with a real nats-server).
 */
import { describe, expect, it } from "@jest/globals";
import { TransientError } from "../../../lib/errors.js";
import { createNatsSink } from "../../../lib/results/nats.js";
import { recordingSleep, sampleDoc } from "./fixtures.js";

interface Published {
  subject: string;
  data: Record<string, unknown>;
  headers: Record<string, string>;
}

function capture(failFirst = 0, error = new Error("connection closed")) {
  const published: Published[] = [];
  let calls = 0;
  const publish = async (subject: string, data: Uint8Array, headers: Record<string, string>) => {
    if (++calls <= failFirst) throw error;
    published.push({ subject, data: JSON.parse(new TextDecoder().decode(data)) as Record<string, unknown>, headers });
  };
  return { publish, published, calls: () => calls };
}

describe("nats sink", () => {
  it("publishes a coresight.analysis.<status> CloudEvent to <prefix>.<status> with a de-dup header", async () => {
    const cap = capture();
    const sink = createNatsSink("coresight.analysis", cap.publish);
    const { id, doc } = sampleDoc();
    await sink.store(id, doc, { status: "completed" });
    await sink.store(id, { ...doc, status: "failed" }, { status: "failed" });
    expect(cap.published.map((p) => p.subject)).toEqual(["coresight.analysis.completed", "coresight.analysis.failed"]);
    const [first] = cap.published;
    expect(first!.headers["Nats-Msg-Id"]).toBe(`${id}-completed`);
    expect(first!.data).toMatchObject({
      specversion: "1.0",
      type: "coresight.analysis.completed",
      source: "coresight-worker",
      id: `${id}-completed`,
      subject: id,
      datacontenttype: "application/json",
      data: JSON.parse(JSON.stringify(doc)),
    });
    expect(Number.isNaN(Date.parse(String(first!.data.time)))).toBe(false);
    expect(cap.published[1]!.data.type).toBe("coresight.analysis.failed");
  });

  it("a re-publish of the same result carries the same event id and Nats-Msg-Id", async () => {
    const cap = capture();
    const sink = createNatsSink("r", cap.publish);
    const { id, doc } = sampleDoc();
    await sink.store(id, doc, { status: "completed" });
    await sink.store(id, doc, { status: "completed" });
    expect(cap.published[0]!.data.id).toBe(cap.published[1]!.data.id);
    expect(cap.published[0]!.headers).toEqual(cap.published[1]!.headers);
  });

  it("retries a failed publish, then gives up with TransientError(result_store_failed)", async () => {
    const rec = recordingSleep();
    const flaky = capture(2);
    await createNatsSink("r", flaky.publish, { sleep: rec.sleep }).store(sampleDoc().id, sampleDoc().doc, { status: "completed" });
    expect(flaky.published).toHaveLength(1);
    expect(rec.delays).toHaveLength(2);

    const down = capture(1000);
    const err = await createNatsSink("r", down.publish, { sleep: recordingSleep().sleep, retry: { maxAttempts: 3 } })
      .store(sampleDoc().id, sampleDoc().doc, { status: "completed" })
      .then(
        () => null,
        (e: unknown) => e as TransientError,
      );
    expect(err).toBeInstanceOf(TransientError);
    expect(err!.code).toBe("result_store_failed");
    expect(err!.message).toMatch(/to r\.completed \(after 3 attempts\): connection closed/);
    expect(down.calls()).toBe(3);
  });
});
