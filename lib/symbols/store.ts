/**
 * A symbol store in the debuginfod layout, on a local directory or an S3
 * prefix:
 *
 *   <root>/<build-id>/executable   the file with code (what gdb maps)
 *   <root>/<build-id>/debuginfo    the file with DWARF (.debug_info)
 *
 * An unstripped binary is stored as both. The same tree served under
 * `/buildid/` by any static HTTP server answers debuginfod's URLs.
 *
 * CI fills it (`coresight-worker symbols add`); the worker reads it. Writes are
 * atomic (local: temp file + rename; S3: a single PutObject).
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import fsp from "node:fs/promises";
import path from "node:path";
import type { Readable } from "node:stream";
import type { S3Client } from "@aws-sdk/client-s3";
import { PermanentError } from "../errors.js";

export type StoreKind = "executable" | "debuginfo";

export interface SymbolStore {
  /** Where it is, for messages: `/path` or `s3://bucket/prefix`. */
  readonly location: string;
  /** A local store's file path for a key (no copy needed); null for remote stores. */
  localPath(buildId: string, kind: StoreKind): string | null;
  /**
   * Downloads `<id>/<kind>` to `dest`; false when the store does not have it.
   * A file of more than `maxBytes` (the symbol cache's size) is an error.
   */
  fetchTo(buildId: string, kind: StoreKind, dest: string, signal?: AbortSignal, maxBytes?: number): Promise<boolean>;
  /** Stores `file` as `<id>/<kind>`, replacing what was there. */
  put(buildId: string, kind: StoreKind, file: string): Promise<void>;
}

function checkId(buildId: string): string {
  if (!/^[0-9a-f]{8,}$/.test(buildId)) throw new Error(`bad build-id ${JSON.stringify(buildId)}`);
  return buildId;
}

export class LocalSymbolStore implements SymbolStore {
  readonly location: string;
  constructor(readonly dir: string) {
    this.location = path.resolve(dir);
  }

  localPath(buildId: string, kind: StoreKind): string {
    return path.join(this.location, checkId(buildId), kind);
  }

  async fetchTo(buildId: string, kind: StoreKind, dest: string): Promise<boolean> {
    try {
      await fsp.copyFile(this.localPath(buildId, kind), dest);
      return true;
    } catch (e: unknown) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
      throw e;
    }
  }

  async put(buildId: string, kind: StoreKind, file: string): Promise<void> {
    const dest = this.localPath(buildId, kind);
    await fsp.mkdir(path.dirname(dest), { recursive: true });
    const tmp = `${dest}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    try {
      await fsp.copyFile(file, tmp);
      await fsp.chmod(tmp, 0o644);
      await fsp.rename(tmp, dest);
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }
}

export class S3SymbolStore implements SymbolStore {
  readonly location: string;
  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
    readonly prefix: string,
  ) {
    this.location = `s3://${bucket}${prefix ? `/${prefix}` : ""}`;
  }

  private key(buildId: string, kind: StoreKind): string {
    return `${this.prefix ? `${this.prefix}/` : ""}${checkId(buildId)}/${kind}`;
  }

  localPath(): null {
    return null;
  }

  async fetchTo(buildId: string, kind: StoreKind, dest: string, signal?: AbortSignal, maxBytes = Number.MAX_SAFE_INTEGER): Promise<boolean> {
    let body: Readable;
    try {
      const { GetObjectCommand } = await import("@aws-sdk/client-s3");
      const r = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(buildId, kind) }), signal ? { abortSignal: signal } : {});
      body = r.Body as Readable;
    } catch (e: unknown) {
      const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
      if (err.name === "NoSuchKey" || err.name === "NotFound" || err.$metadata?.httpStatusCode === 404) return false;
      throw new Error(`symbol store ${this.location}: GetObject ${this.key(buildId, kind)} failed: ${(e as Error).message}`, { cause: e });
    }
    // The SDK's body is node's IncomingMessage: written as the dumps are (fetchToFile.ts, loaded with the SDK: only for an S3 store), capped.
    const key = this.key(buildId, kind);
    const { writeToFile } = await import("../storage/fetchToFile.js");
    await writeToFile(body, dest, {
      maxBytes,
      tooLarge: (n) => new Error(`symbol store ${this.location}: ${key} is more than ${maxBytes} bytes (${n} so far), larger than the symbol cache (SYMBOL_CACHE_MAX_BYTES)`),
      ...(signal ? { signal } : {}),
    });
    return true;
  }

  async put(buildId: string, kind: StoreKind, file: string): Promise<void> {
    const { size } = await fsp.stat(file);
    const { PutObjectCommand } = await import("@aws-sdk/client-s3");
    // A known ContentLength keeps the SDK from aws-chunked uploads that some
    // S3-compatible stores save verbatim (ENV-NOTES, "S3").
    await this.s3.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.key(buildId, kind), Body: fs.createReadStream(file), ContentLength: size }));
  }
}

/** Splits `s3://bucket/prefix/` into bucket and prefix (no slashes at the ends); null for other strings. */
export function parseS3Location(location: string): { bucket: string; prefix: string } | null {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(location.trim());
  if (!m) return null;
  return { bucket: m[1]!, prefix: m[2]!.replace(/^\/+|\/+$/g, "") };
}

/**
 * Opens the store at `location` (`/path`, `file:///path` or `s3://bucket/prefix`).
 * An S3 location needs a client: without one it is a PermanentError naming
 * the settings to add.
 */
export function openSymbolStore(location: string, s3: S3Client | null | undefined): SymbolStore {
  const s3loc = parseS3Location(location);
  if (s3loc) {
    if (!s3) {
      throw new PermanentError(
        "invalid_input",
        `symbol store ${location} is on S3 but no S3 client is configured (set AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and S3_ENDPOINT for non-AWS stores)`,
      );
    }
    return new S3SymbolStore(s3, s3loc.bucket, s3loc.prefix);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location) && !location.startsWith("file://")) {
    throw new PermanentError("invalid_input", `symbol store ${JSON.stringify(location)}: expected a directory or s3://bucket/prefix`);
  }
  return new LocalSymbolStore(location.startsWith("file://") ? new URL(location).pathname : location);
}
