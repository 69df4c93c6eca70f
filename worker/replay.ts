/**
 * Replay: publish fixture events to the queue, as CoreSight does with what
 * CoreDog reports. An event whose `data.file_url` is a local path (no URL
 * scheme) has its dump uploaded to S3 first and the URL replaced by a
 * presigned GET URL, with md5 and file_size filled in, the way CoreDog does.
 * Every publish carries `Nats-Msg-Id` = analysis_id, so a replayed event is
 * not queued twice within the stream's duplicate window (with `fresh`, an
 * event whose analysis_id was assigned gets a new message id instead).
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import { CreateBucketCommand, GetObjectCommand, HeadBucketCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { toError } from "../lib/errors.js";
import { analysisIdOf, parseEvent } from "../lib/events.js";

/**
 * Delivers one prepared event instead of publishing it to NATS (`make demo`
 * POSTs it to the CoreSight API as the agent does). Answers the analysis id
 * the receiver assigned and whether it already had the event.
 */
export type ReplaySender = (body: string, file: string) => Promise<{ analysisId: string; duplicate: boolean; note?: string }>;

export interface ReplayOptions {
  /** With `send`, not used. */
  nc?: NatsConnection;
  subject: string;
  send?: ReplaySender;
  s3: S3Client | null;
  bucket: string;
  /** Presigned URL lifetime, seconds. */
  expiresSec: number;
  /** Give each event a new id so a replay analyzes again instead of being de-duplicated. */
  fresh?: boolean;
  /** Skip (with a log line) events whose local dump does not exist, instead of failing. */
  skipMissing?: boolean;
  log?: (line: string) => void;
}

export interface Replayed {
  file: string;
  eventId: string;
  analysisId: string;
  fileName: string | null;
  duplicate: boolean;
}

/** Expands directories into their *.json files, sorted. */
export async function eventFiles(inputs: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const input of inputs) {
    const st = await fsp.stat(input);
    if (st.isDirectory()) {
      const names = (await fsp.readdir(input)).filter((n) => n.endsWith(".json")).sort();
      out.push(...names.map((n) => path.join(input, n)));
    } else {
      out.push(input);
    }
  }
  return out;
}

function isLocalPath(fileUrl: string): boolean {
  return !/^[a-z][a-z0-9+.-]*:/i.test(fileUrl);
}

async function md5Of(file: string): Promise<string> {
  const h = createHash("md5");
  await pipeline(fs.createReadStream(file), h);
  return h.digest("hex");
}

async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch {
    await s3.send(new CreateBucketCommand({ Bucket: bucket })).catch((e: unknown) => {
      if (!/BucketAlreadyOwnedByYou|BucketAlreadyExists/.test(String(e))) throw e;
    });
  }
}

/** Uploads a local dump and returns a presigned GET URL for it. */
async function upload(s3: S3Client, bucket: string, file: string, key: string, expiresSec: number): Promise<string> {
  const { size } = await fsp.stat(file);
  // A known ContentLength keeps the SDK from aws-chunked framing, which
  // some S3-compatible stores save verbatim (ENV-NOTES: s3rver checksum trap).
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: fs.createReadStream(file), ContentLength: size }));
  return getSignedUrl(s3, new GetObjectCommand({ Bucket: bucket, Key: key }), { expiresIn: expiresSec });
}

/**
 * Publishes each event file in order; see the module comment. Errors name
 * the event file. Returns one entry per published event (skipped ones are
 * left out), with `duplicate` from the stream's de-duplication.
 */
export async function replayEvents(files: string[], opts: ReplayOptions): Promise<Replayed[]> {
  if (!opts.nc && !opts.send) throw new Error("replayEvents needs a NATS connection or a sender");
  const js = opts.nc ? jetstream(opts.nc) : null;
  const out: Replayed[] = [];
  let bucketReady = false;
  for (const file of files) {
    let raw: { id?: string; data?: Record<string, unknown> };
    try {
      raw = JSON.parse(await fsp.readFile(file, "utf8")) as typeof raw;
    } catch (e: unknown) {
      throw new Error(`${file}: ${toError(e).message}`, { cause: e });
    }
    const data = raw.data ?? {};
    const fileUrl = typeof data.file_url === "string" ? data.file_url : "";
    if (fileUrl && isLocalPath(fileUrl)) {
      // Look for the dump before asking for S3: a dump that is not here is
      // skipped (skipMissing) whether or not S3 is configured.
      const local = [path.resolve(path.dirname(file), fileUrl), path.resolve(fileUrl)].find((p) => fs.existsSync(p));
      if (!local) {
        if (opts.skipMissing) {
          opts.log?.(`skipped ${path.basename(file)}: dump ${fileUrl} was not built on this machine`);
          continue;
        }
        throw new Error(`${file}: dump ${fileUrl} not found (run make fixtures first)`);
      }
      if (!opts.s3) throw new Error(`${file}: its dump is a local file; set S3_ENDPOINT and AWS credentials so replay can upload it`);
      if (!bucketReady) {
        await ensureBucket(opts.s3, opts.bucket);
        bucketReady = true;
      }
      const name = typeof data.file_name === "string" && data.file_name ? data.file_name : path.basename(local);
      data.file_url = await upload(opts.s3, opts.bucket, local, `coredumps/${name}`, opts.expiresSec);
      data.file_name = name;
      data.file_size = (await fsp.stat(local)).size;
      data.md5 = await md5Of(local);
      opts.log?.(`uploaded ${path.relative(process.cwd(), local)} -> s3://${opts.bucket}/coredumps/${name}`);
    }
    const freshSuffix = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    if (opts.fresh) raw.id = `${raw.id ?? "replay"}-${freshSuffix}`;
    raw.data = data;
    const body = JSON.stringify(raw);
    let ev: ReturnType<typeof parseEvent>;
    let analysisId: string;
    try {
      ev = parseEvent(body);
      analysisId = analysisIdOf(ev);
    } catch (e: unknown) {
      throw new Error(`${file}: ${toError(e).message}`, { cause: e });
    }
    if (opts.send) {
      const sent = await opts.send(body, file);
      out.push({ file, eventId: ev.id, analysisId: sent.analysisId, fileName: ev.data.file_name ?? null, duplicate: sent.duplicate });
      opts.log?.(`posted ${path.basename(file)} event ${ev.id}: ${sent.note ?? `analysis ${sent.analysisId}`}`);
      continue;
    }
    // An analysis_id CoreSight assigned does not change with the event id, so
    // a fresh replay of such an event needs its own message id to be queued.
    const assigned = ev.data.analysis_id !== undefined || ev.data.job_id !== undefined;
    const h = natsHeaders();
    h.set("Nats-Msg-Id", opts.fresh && assigned ? `${analysisId}-${freshSuffix}` : analysisId);
    const ack = await js!.publish(opts.subject, body, { headers: h });
    out.push({ file, eventId: ev.id, analysisId, fileName: ev.data.file_name ?? null, duplicate: ack.duplicate });
    opts.log?.(`published ${path.basename(file)} event ${ev.id} analysis ${analysisId}${ack.duplicate ? " (duplicate, not queued again)" : ""}`);
  }
  return out;
}
