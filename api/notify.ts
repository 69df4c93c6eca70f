/**
 * Webhook notifications: a crash group is new (its first analysis with a
 * signature) or regressed (seen again after it was resolved; once per
 * resolve). The rows are queued in the transaction that stored the result
 * (api/db/queries.ts), one per configured channel, and sent here with
 * retries, so an unreachable chat service delays a message but never drops
 * it silently (after MAX_ATTEMPTS it is given up and logged).
 *
 * Channels: Slack incoming webhooks (`{"text": …}`) and WeCom group robots
 * (`{"msgtype":"text","text":{"content":…}}`, which answer 200 with a
 * non-zero `errcode` on failure). Webhook URLs carry their secret: they are
 * never logged, only the channel's name is.
 */
import type { ApiConfig } from "../lib/config.js";
import { toError } from "../lib/errors.js";
import type { EventContext } from "../lib/events.js";
import type { Logger } from "../lib/log.js";
import type { ResultDocument } from "../lib/results/document.js";
import type { Db } from "./db/connect.js";
import { markNotified, markNotifyFailed, pendingNotifications } from "./db/queries.js";
import type { NotificationKind, NotificationRow } from "./db/schema.js";
import { createWaker } from "./loop.js";

export type Channel = "slack" | "wecom";

const MAX_ATTEMPTS = 10;
const POLL_MS = 2000;
const TIMEOUT_MS = 10_000;

/** The configured channels, in a fixed order. */
export function channelsOf(cfg: ApiConfig["notify"]): Channel[] {
  return (["slack", "wecom"] as const).filter((c) => cfg[c] !== undefined);
}

/** The message's text: what crashed, where, and which group and analysis to open. */
export function notificationText(kind: NotificationKind, doc: ResultDocument, ctx: EventContext | null): string {
  const sig = doc.signature;
  const head = kind === "new" ? "New crash group" : "Regressed crash group (seen again after it was resolved)";
  const signal = doc.signal?.name ? `${doc.signal.name}${doc.signal.code ? ` (${doc.signal.code})` : ""}` : "crash";
  const f = doc.crash_frame;
  const where = f?.function ? ` in ${f.function}${f.file ? ` at ${f.file}${f.line !== null ? `:${f.line}` : ""}` : ""}` : "";
  const pod = ctx?.pod ? `pod ${ctx.namespace ? `${ctx.namespace}/` : ""}${ctx.pod}` : null;
  const facts = [pod, ctx?.image ? `image ${ctx.image}` : null, ctx?.node ? `node ${ctx.node}` : null].filter((x) => x !== null);
  return [
    `[CoreSight] ${head}: ${sig?.text ?? "?"}`,
    `${signal}${where}`,
    ...(facts.length > 0 ? [facts.join(" · ")] : []),
    `group ${sig?.hash ?? "?"} · analysis ${doc.analysis_id}`,
  ].join("\n");
}

function bodyFor(channel: Channel, text: string): string {
  return JSON.stringify(channel === "slack" ? { text } : { msgtype: "text", text: { content: text } });
}

async function deliver(fetchFn: typeof fetch, channel: Channel, url: string, text: string): Promise<void> {
  const res = await fetchFn(url, {
    method: "POST",
    headers: { "content-type": "application/json", "user-agent": "coresight-api" },
    body: bodyFor(channel, text),
    signal: AbortSignal.timeout(TIMEOUT_MS),
    redirect: "manual",
  });
  const answer = await res.text().catch(() => "");
  if (!res.ok) throw new Error(`${channel} answered HTTP ${res.status}`);
  if (channel === "wecom") {
    let errcode: unknown = 0;
    try {
      errcode = (JSON.parse(answer) as { errcode?: unknown }).errcode ?? 0;
    } catch {
      /* WeCom always answers JSON; anything else after a 200 is taken as delivered */
    }
    if (errcode !== 0) throw new Error(`wecom answered errcode ${String(errcode)}`);
  }
}

export interface Notifier {
  wake(): void;
  stop(): Promise<void>;
}

export function startNotifier(opts: { db: Db; config: ApiConfig["notify"]; logger: Logger; fetch?: typeof fetch; now?: () => string }): Notifier {
  const log = opts.logger.child({ component: "notify" });
  const fetchFn = opts.fetch ?? globalThis.fetch;
  const now = opts.now ?? (() => new Date().toISOString());
  const waker = createWaker();
  let stopped = false;

  async function sendOne(row: NotificationRow): Promise<void> {
    const url = opts.config[row.channel as Channel];
    const fields = { channel: row.channel, kind: row.kind, signature_hash: row.signature_hash, analysis_id: row.analysis_id };
    if (url === undefined) {
      await markNotified(opts.db.kysely, row.id, now());
      log.warn(fields, "notification dropped: its channel is no longer configured");
      return;
    }
    try {
      await deliver(fetchFn, row.channel as Channel, url, row.message);
      await markNotified(opts.db.kysely, row.id, now());
      log.info(fields, "notification sent");
    } catch (e: unknown) {
      // fetch's own message can quote the URL: keep only our text or the cause's code.
      const err = toError(e);
      const why = /^(slack|wecom) answered/.test(err.message)
        ? err.message
        : err.name === "TimeoutError"
          ? "timed out"
          : `request failed (${String((err.cause as { code?: unknown } | undefined)?.code ?? err.name)})`;
      if (row.attempts + 1 >= MAX_ATTEMPTS) {
        await markNotified(opts.db.kysely, row.id, now());
        log.error({ ...fields, attempts: row.attempts + 1, err: why }, "notification given up");
        return;
      }
      await markNotifyFailed(opts.db.kysely, row.id, why);
      log.warn({ ...fields, attempt: row.attempts + 1, err: why }, "notification failed; retrying");
      throw e;
    }
  }

  const loop = (async () => {
    let backoff = 1000;
    while (!stopped) {
      try {
        const rows = await pendingNotifications(opts.db.kysely, 50);
        for (const row of rows) await sendOne(row);
        backoff = 1000;
        await waker.pause(POLL_MS);
      } catch {
        await waker.pause(backoff);
        backoff = Math.min(backoff * 2, 60_000);
      }
    }
  })();

  let stopping: Promise<void> | null = null;
  return {
    wake: () => waker.wake(),
    stop() {
      stopping ??= (async () => {
        stopped = true;
        waker.wake();
        await loop;
      })();
      return stopping;
    },
  };
}
