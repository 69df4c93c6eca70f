/**
 * The S3 client for GetObject by bucket/key, and how S3 errors map to our
 * error codes.
 *
 * Checksums: with the SDK defaults a streamed PutObject to some S3-compatible
 * stores is stored with the aws-chunked framing as content, and responses
 * from stores without checksum headers fail validation; "WHEN_REQUIRED" for
 * both avoids that (see /work/shared/ENV-NOTES.md, "S3").
 *
 * The SDK is imported only when a client is made (and by the modules that send
 * commands, at the call): it is ~200 ms of module loading that a worker
 * without S3 credentials, or a local `analyze`, never needs.
 */
import type { S3Client } from "@aws-sdk/client-s3";
import { PermanentError, TransientError, type CoreSightError } from "../errors.js";
import { parseRetryAfter } from "../retry.js";

export interface S3Settings {
  endpoint?: string;
  region: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  forcePathStyle: boolean;
}

/** The endpoint each client made here was built for (null = AWS default). */
const targets = new WeakMap<S3Client, string | null>();

/**
 * An S3 client for the configured store, or null when no credentials are
 * configured (then dumps are fetched only through their presigned URLs).
 */
export async function makeS3Client(cfg: S3Settings): Promise<S3Client | null> {
  if (!cfg.accessKeyId || !cfg.secretAccessKey) return null;
  const { S3Client } = await import("@aws-sdk/client-s3");
  const client = new S3Client({
    region: cfg.region,
    ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
    forcePathStyle: cfg.forcePathStyle,
    credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    // On AWS a bucket in another region answers 301; let the SDK follow it.
    followRegionRedirects: !cfg.endpoint,
  });
  targets.set(client, cfg.endpoint ? new URL(cfg.endpoint).origin : null);
  return client;
}

/** scheme://host[:port] the client talks to, or null for AWS's default endpoints. */
export async function s3ClientEndpoint(client: S3Client): Promise<string | null> {
  if (targets.has(client)) return targets.get(client) ?? null;
  const provider = client.config.endpoint;
  if (!provider) return null;
  const ep = await provider();
  const port = ep.port ? `:${ep.port}` : "";
  return `${ep.protocol}//${ep.hostname}${port}`.toLowerCase();
}

function sameOrigin(a: string, b: string): boolean {
  try {
    const x = new URL(a);
    const y = new URL(b);
    // http and https of one host are the same store (CoreDog often signs http URLs).
    return x.hostname.toLowerCase() === y.hostname.toLowerCase() && (x.port || "") === (y.port || "");
  } catch {
    return false;
  }
}

/**
 * True when `client` reaches the store a location's `endpoint` names, so that
 * GetObject on its bucket/key reads the same object. `locationEndpoint` null
 * (s3://) always matches; AWS endpoints match a client without a custom endpoint.
 */
export async function clientServes(client: S3Client, locationEndpoint: string | null): Promise<boolean> {
  if (locationEndpoint === null) return true;
  const target = await s3ClientEndpoint(client);
  if (target === null) {
    try {
      return /\.amazonaws\.com(\.cn)?$/.test(new URL(locationEndpoint).hostname.toLowerCase());
    } catch {
      return false;
    }
  }
  return sameOrigin(target, locationEndpoint);
}

interface SdkError {
  name?: string;
  Code?: string;
  message?: string;
  code?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
  $response?: { headers?: Record<string, string | undefined> };
}

/** Maps an SDK error of GetObject to a classified error for `s3://bucket/key`. */
export function classifyS3Error(e: unknown, bucket: string, key: string): CoreSightError {
  const err = (e ?? {}) as SdkError;
  const where = `s3://${bucket}/${key}`;
  const status = err.$metadata?.httpStatusCode;
  const name = err.name ?? err.Code ?? err.code ?? "Error";
  const msg = `${name}${err.message && err.message !== name ? `: ${err.message}` : ""}`;
  if (name === "NoSuchKey" || name === "NoSuchBucket" || name === "NotFound" || status === 404) {
    return new PermanentError("dump_not_found", `dump ${where} does not exist (${msg})`, { cause: e });
  }
  if (name === "AccessDenied" || name === "InvalidAccessKeyId" || name === "SignatureDoesNotMatch" || status === 403 || status === 401) {
    return new PermanentError("dump_forbidden", `access to dump ${where} was denied with the configured credentials (${msg})`, { cause: e });
  }
  if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429 && !err.$retryable) {
    return new PermanentError("download_failed", `GetObject ${where} failed with HTTP ${status} (${msg})`, { cause: e });
  }
  const retryAfter = parseRetryAfter(err.$response?.headers?.["retry-after"] ?? null);
  return new TransientError("download_failed", `GetObject ${where} failed (${msg})`, {
    cause: e,
    ...(retryAfter !== undefined ? { retryAfterMs: retryAfter } : {}),
  });
}
