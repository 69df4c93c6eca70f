import { describe, expect, it } from "@jest/globals";
import { AbortedError, backoffDelay, jitter, parseRetryAfter, retryLoop, sleep } from "../../lib/retry.js";

describe("backoff", () => {
  it("doubles up to the cap, with equal jitter in [d/2, d]", () => {
    const at = (r: number) => [1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, { baseMs: 1000, maxMs: 10_000, random: () => r }));
    expect(at(0)).toEqual([500, 1000, 2000, 4000, 5000, 5000]);
    expect(at(0.999999)).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000]);
    expect(jitter(0)).toBe(0);
    for (let i = 0; i < 100; i++) {
      const d = jitter(3000);
      expect(d).toBeGreaterThanOrEqual(1500);
      expect(d).toBeLessThanOrEqual(3000);
    }
  });

  it("reads Retry-After as seconds or as an HTTP date", () => {
    const now = Date.parse("2025-12-12T15:30:00Z");
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter("1.5", now)).toBe(1500);
    expect(parseRetryAfter("Fri, 12 Dec 2025 15:30:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Fri, 12 Dec 2025 15:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter("", now)).toBeUndefined();
  });
});

describe("retryLoop", () => {
  const policy = { maxAttempts: 5, maxWaitMs: 30_000, baseMs: 1000, maxMs: 10_000 };

  it("stops at the first success", async () => {
    const delays: number[] = [];
    let n = 0;
    const r = await retryLoop(async () => (++n < 3 ? { done: false, error: new Error(`e${n}`) } : { done: true }), {
      policy,
      random: () => 1,
      sleep: async (ms) => void delays.push(ms),
    });
    expect(r).toEqual({ ok: true, attempts: 3 });
    expect(delays).toEqual([1000, 2000]);
  });

  it("reports the last error after maxAttempts", async () => {
    const r = await retryLoop(async (a) => ({ done: false, error: new Error(`e${a}`) }), { policy, sleep: async () => undefined });
    expect(r).toMatchObject({ ok: false, attempts: 5, aborted: false });
    expect(!r.ok && r.error.message).toBe("e5");
  });

  it("propagates a thrown (permanent) error at once", async () => {
    let n = 0;
    await expect(
      retryLoop(
        async () => {
          n++;
          throw new Error("rejected");
        },
        { policy },
      ),
    ).rejects.toThrow("rejected");
    expect(n).toBe(1);
  });

  it("an abort during the wait ends the loop", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 20);
    const r = await retryLoop(async () => ({ done: false, error: new Error("503") }), {
      policy: { ...policy, baseMs: 60_000, maxMs: 60_000, maxWaitMs: 600_000 },
      signal: ac.signal,
    });
    expect(r).toMatchObject({ ok: false, attempts: 1, aborted: true });
  });

  it("sleep rejects with AbortedError and clears its timer", async () => {
    const before = timeouts();
    const ac = new AbortController();
    const p = sleep(60_000, ac.signal);
    expect(timeouts()).toBe(before + 1);
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(AbortedError);
    expect(timeouts()).toBe(before);
    await expect(sleep(1)).resolves.toBeUndefined();
  });

  it("retryLoop aborted while it waits leaves no timer behind", async () => {
    const before = timeouts();
    const ac = new AbortController();
    const loop = retryLoop(async () => ({ done: false, error: new Error("503") }), {
      policy: { maxAttempts: 5, maxWaitMs: 60_000, baseMs: 10_000, maxMs: 10_000 },
      signal: ac.signal,
    });
    await new Promise((r) => setImmediate(r));
    expect(timeouts()).toBe(before + 1);
    ac.abort();
    await expect(loop).resolves.toMatchObject({ ok: false, aborted: true, attempts: 1 });
    expect(timeouts()).toBe(before);
  });
});

/** Live timers of this process (what would keep jest from exiting). */
function timeouts(): number {
  return process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
}
