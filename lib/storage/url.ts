/**
 * Where a dump is, read from an event's `file_url` (pure: no I/O).
 *
 * CoreDog reports a presigned, virtual-hosted S3 URL (often plain http), or
 * `cfs://<mount dir>/<file name>` for its shared-file-system store. Other
 * collectors send `s3://bucket/key`, path-style MinIO URLs or plain http(s).
 *
 * How a host is read (first match wins):
 * 1. AWS (`*.amazonaws.com[.cn]`), Tencent COS (`*.cos.<region>.myqcloud.com`)
 *    and Aliyun OSS (`*.oss-<region>.aliyuncs.com`): virtual-hosted when the
 *    bucket is in the host name, path-style otherwise.
 * 2. The configured S3 endpoint (`S3_ENDPOINT`, passed as `s3Endpoint`): the
 *    same host is path-style, a subdomain of it is virtual-hosted.
 * 3. Any other URL carrying SigV4 (`X-Amz-*`) or legacy (`Signature` +
 *    `Expires`) presign parameters is an S3 presigned URL. An IP address or a
 *    single-label host (`minio`, `localhost`) cannot carry a bucket name, so it
 *    is path-style; a dotted host name is read as virtual-hosted, because that
 *    is what CoreDog sends. The reading only matters for the GetObject
 *    fallback, which is used only when the configured endpoint matches the
 *    location's `endpoint` (see download.ts) — and a matching endpoint was
 *    already handled by rule 2 — so a wrong guess cannot fetch the wrong object.
 * 4. Any other http(s) URL is a plain download.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { isIP } from "node:net";
import { PermanentError } from "../errors.js";

export type DumpLocation =
  | {
      kind: "s3";
      bucket: string;
      key: string;
      /** The original http(s) URL, for a (presigned) GET; null for s3://. */
      url: string | null;
      presigned: boolean;
      /** scheme://host[:port] of the store's S3 endpoint (without the bucket); null for s3://. */
      endpoint: string | null;
      region: string | null;
    }
  | { kind: "http"; url: string }
  | { kind: "file"; path: string };

export interface ParseDumpUrlOptions {
  /** The configured S3 endpoint (S3_ENDPOINT), used to tell path-style from virtual-hosted on custom hosts. */
  s3Endpoint?: string | null;
}

function unsupported(raw: string, why: string): PermanentError {
  return new PermanentError("unsupported_url", `unsupported dump URL ${JSON.stringify(redactUrl(raw))}: ${why}`);
}

function decodeKey(raw: string, encoded: string): string {
  try {
    return decodeURIComponent(encoded);
  } catch (e: unknown) {
    throw new PermanentError("unsupported_url", `dump URL ${JSON.stringify(redactUrl(raw))} has an invalid percent-encoding`, { cause: e });
  }
}

/** True when the query carries S3 presign parameters (SigV4, SigV2/OSS legacy, or COS). */
function isPresigned(u: URL): boolean {
  const names = [...u.searchParams.keys()].map((k) => k.toLowerCase());
  if (names.some((n) => n === "x-amz-signature" || n === "x-amz-credential" || n === "x-amz-algorithm")) return true;
  if (names.includes("signature") && names.includes("expires")) return true; // SigV2 (AWS) and OSS V1
  if (names.includes("x-oss-signature") || names.includes("q-signature")) return true; // OSS V4, COS
  return false;
}

const AWS_REGION = /(?:^|\.|-)((?:us-gov|us|eu|ap|sa|ca|me|af|il|mx|cn)-[a-z]+-\d+)(?:\.|$)/;

interface HostStyle {
  /** Bucket from the host name (virtual-hosted), or null for path-style. */
  bucket: string | null;
  /** scheme://host of the service endpoint without the bucket. */
  endpointHost: string;
  region: string | null;
}

/** Recognizes the public clouds' S3 host names. */
function knownStore(host: string): HostStyle | null {
  // AWS: bucket.s3.amazonaws.com, bucket.s3.us-west-2.amazonaws.com,
  // bucket.s3-us-west-2.amazonaws.com, bucket.s3.dualstack.<region>.amazonaws.com,
  // s3.<region>.amazonaws.com (path-style), *.amazonaws.com.cn.
  const aws = /^(?:(.+)\.)?(s3(?:[.-][a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?)$/.exec(host);
  if (aws) {
    const service = aws[2]!;
    const region = AWS_REGION.exec(service)?.[1] ?? (service.endsWith(".cn") ? null : "us-east-1");
    return { bucket: aws[1] ?? null, endpointHost: service, region };
  }
  // Tencent COS: <bucket>-<appid>.cos.<region>.myqcloud.com (the S3 bucket name includes the appid).
  const cos = /^(?:(.+)\.)?(cos\.([a-z0-9-]+)\.myqcloud\.com)$/.exec(host);
  if (cos) {
    const region = cos[3] === "accelerate" ? null : cos[3]!;
    return { bucket: cos[1] ?? null, endpointHost: cos[2]!, region };
  }
  // Aliyun OSS: <bucket>.oss-<region>[-internal].aliyuncs.com; the S3-compatible region drops "oss-".
  const oss = /^(?:(.+)\.)?(oss-([a-z0-9-]+?)(?:-internal)?\.aliyuncs\.com)$/.exec(host);
  if (oss) {
    const region = oss[3] === "accelerate" ? null : oss[3]!;
    return { bucket: oss[1] ?? null, endpointHost: oss[2]!, region };
  }
  return null;
}

function hostOf(u: URL): string {
  return u.host.toLowerCase();
}

/** Applies rule 2 (configured endpoint); null when it does not match. */
function configuredStore(u: URL, endpoint: string | null | undefined): HostStyle | null {
  if (!endpoint) return null;
  let ep: URL;
  try {
    ep = new URL(endpoint);
  } catch {
    return null;
  }
  const host = hostOf(u);
  const epHost = hostOf(ep);
  if (host === epHost) return { bucket: null, endpointHost: epHost, region: null };
  if (u.port === ep.port && u.hostname.toLowerCase().endsWith("." + ep.hostname.toLowerCase())) {
    const bucket = u.hostname.slice(0, -(ep.hostname.length + 1));
    return { bucket, endpointHost: epHost, region: null };
  }
  return null;
}

function looksSingleHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, "");
  return isIP(h) !== 0 || !h.includes(".");
}

function s3FromHttp(raw: string, u: URL, style: HostStyle, presigned: boolean): DumpLocation {
  const endpoint = `${u.protocol}//${style.endpointHost}`;
  const pathname = u.pathname;
  let bucket: string;
  let key: string;
  if (style.bucket !== null) {
    bucket = style.bucket.toLowerCase();
    key = decodeKey(raw, pathname.replace(/^\//, ""));
  } else {
    const m = /^\/([^/]+)\/(.+)$/.exec(pathname);
    if (!m) throw unsupported(raw, "a path-style S3 URL needs /<bucket>/<key>");
    bucket = decodeKey(raw, m[1]!);
    key = decodeKey(raw, m[2]!);
  }
  if (!bucket || !key) throw unsupported(raw, "no bucket or key in the URL");
  return { kind: "s3", bucket, key, url: raw, presigned, endpoint, region: style.region };
}

/**
 * Reads an event's `file_url`. Throws PermanentError("unsupported_url") for
 * anything that is not http(s), s3, cfs or file (ftp:, javascript:, relative,
 * empty). Object keys are percent-decoded (`%20` → space; `+` stays `+`).
 */
export function parseDumpUrl(raw: string, opts: ParseDumpUrlOptions = {}): DumpLocation {
  const text = typeof raw === "string" ? raw.trim() : "";
  if (!text) throw new PermanentError("unsupported_url", "the dump URL is empty");

  // cfs:// is built by string concatenation in CoreDog (cfs://<mount dir>/<name>),
  // so its path is taken literally, not percent-decoded; a mount dir without a
  // leading slash (cfs://mnt/cfs/x) still means the absolute path.
  const cfs = /^cfs:\/\/(.*)$/i.exec(text);
  if (cfs) {
    const rest = cfs[1]!.split(/[?#]/)[0]!;
    if (!rest || rest === "/") throw unsupported(text, "cfs:// URL without a path");
    return { kind: "file", path: path.posix.normalize(rest.startsWith("/") ? rest : "/" + rest) };
  }

  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw unsupported(text, "not an absolute URL");
  }
  switch (u.protocol) {
    case "file:": {
      let p: string;
      try {
        p = fileURLToPath(u);
      } catch (e: unknown) {
        throw new PermanentError("unsupported_url", `unsupported dump URL ${JSON.stringify(redactUrl(text))}: ${(e as Error).message}`, { cause: e });
      }
      return { kind: "file", path: p };
    }
    case "s3:": {
      const bucket = u.hostname;
      const key = decodeKey(text, u.pathname.replace(/^\//, ""));
      if (!bucket || !key) throw unsupported(text, "s3:// URL needs s3://<bucket>/<key>");
      return { kind: "s3", bucket, key, url: null, presigned: false, endpoint: null, region: null };
    }
    case "http:":
    case "https:":
      break;
    default:
      throw unsupported(text, `scheme ${u.protocol} is not supported (http, https, s3, cfs, file are)`);
  }
  if (u.username || u.password) throw unsupported(text, "credentials in the URL are not accepted");

  const presigned = isPresigned(u);
  const style = knownStore(u.hostname.toLowerCase()) ?? configuredStore(u, opts.s3Endpoint);
  if (style) return s3FromHttp(text, u, style, presigned);
  if (presigned) {
    const single = looksSingleHost(u.hostname);
    if (single) return s3FromHttp(text, u, { bucket: null, endpointHost: hostOf(u), region: null }, true);
    const [first, ...rest] = u.hostname.toLowerCase().split(".");
    const port = u.port ? `:${u.port}` : "";
    return s3FromHttp(text, u, { bucket: first!, endpointHost: rest.join(".") + port, region: null }, true);
  }
  return { kind: "http", url: text };
}

const SECRET_PARAM = /signature|credential|token|secret|passw|auth|accesskey|^q-ak$|^sig$|^key$|apikey|api_key/i;

/**
 * A URL safe for logs and results: userinfo dropped, the fragment dropped,
 * and the values of secret-looking query parameters (X-Amz-Signature,
 * X-Amz-Credential, X-Amz-Security-Token, Signature, *token*, ...) replaced
 * by "REDACTED". Never throws; an unparsable string loses its query.
 */
export function redactUrl(raw: string): string {
  if (typeof raw !== "string") return "";
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return raw.replace(/[?#].*$/s, "").replace(/\/\/[^/@]*@/, "//");
  }
  if (u.protocol === "cfs:" || u.protocol === "file:") return raw.replace(/[?#].*$/s, "");
  u.username = "";
  u.password = "";
  u.hash = "";
  if (u.search) {
    const parts = u.search
      .slice(1)
      .split("&")
      .map((p) => {
        const eq = p.indexOf("=");
        const name = eq < 0 ? p : p.slice(0, eq);
        let decoded = name;
        try {
          decoded = decodeURIComponent(name);
        } catch {
          /* keep the raw name */
        }
        return SECRET_PARAM.test(decoded) ? `${name}=REDACTED` : p;
      });
    u.search = "?" + parts.join("&");
  }
  return u.toString();
}

/**
 * When a presigned SigV4 URL expires, from its X-Amz-Date and X-Amz-Expires
 * (ms since the epoch); null when it cannot be told (not SigV4, no expiry).
 */
export function presignedExpiry(raw: string): number | null {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return null;
  }
  const get = (name: string): string | null => {
    for (const [k, v] of u.searchParams) if (k.toLowerCase() === name) return v;
    return null;
  };
  const date = get("x-amz-date");
  const expires = get("x-amz-expires");
  if (date && expires) {
    const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date);
    const secs = Number(expires);
    if (!m || !Number.isFinite(secs)) return null;
    const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
    return t + secs * 1000;
  }
  // SigV2 / OSS V1: Expires is an absolute epoch in seconds.
  const v2 = get("expires");
  if (v2 && get("signature") !== null && /^\d+$/.test(v2)) return Number(v2) * 1000;
  // Tencent COS: q-sign-time=<start>;<end> in epoch seconds.
  const cos = /^\d+;(\d+)$/.exec(get("q-sign-time") ?? "");
  if (cos) return Number(cos[1]) * 1000;
  return null;
}
