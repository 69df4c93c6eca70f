/**
 * Typed errors. Every error that can end a job carries a stable `code`: it is
 * what lands in a failed result's `error.code`, and its class decides the
 * retry (see `isPermanent`):
 *
 * - PermanentError: retrying cannot help (dump not found, not a core). The
 *   pipeline stores a `failed` result with the code and the message is acked;
 *   an InvalidEventError (the message is not a valid event) is stored the
 *   same way and the message terminated.
 * - TransientError: the world may heal (network, S3/API 5xx or 429). The
 *   consumer naks the message with a delay and tries again later.
 * - ShutdownError: the worker stops; the message goes back to the queue.
 *
 * Anything else (a bug, an unexpected throw) is treated as transient so that a
 * redelivery gets a second chance; the last allowed delivery still stores a
 * `failed` result (`retries_exhausted`), so nothing is ever lost silently.
 * What the consumer does with each is one table: worker/settle.ts `decide()`.
 */

import { types } from "node:util";
import * as z from "zod";

/** Every code an error, and so a failed result's `error.code`, can carry (docs/api.md lists their meaning). */
export const ErrorCodeSchema = z.enum([
  "invalid_event",
  "invalid_input",
  "file_not_found",
  "empty_file",
  "not_a_core",
  "truncated_core",
  "unsupported_compression",
  "executable_not_found",
  "gdb_not_installed",
  "gdb_failed",
  "gdb_timeout",
  "dump_not_found",
  "dump_forbidden",
  "too_large",
  "md5_mismatch",
  "host_not_allowed",
  "unsupported_url",
  "download_failed",
  "result_rejected",
  "result_store_failed",
  "retries_exhausted",
  "shutdown",
  "internal_error",
]);
export type ErrorCode = z.infer<typeof ErrorCodeSchema>;

export class CoreSightError extends Error {
  readonly code: ErrorCode;
  readonly permanent: boolean;
  constructor(code: ErrorCode, message: string, options: { cause?: unknown; permanent: boolean }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.permanent = options.permanent;
  }
}

/** Retrying cannot help: store a failed result and terminate the message. */
export class PermanentError extends CoreSightError {
  constructor(code: ErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { ...options, permanent: true });
  }
}

/** The world may heal: nak with a delay and retry. */
export class TransientError extends CoreSightError {
  /** Suggested delay before a retry, when the remote said (Retry-After). */
  readonly retryAfterMs: number | undefined;
  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retryAfterMs?: number } = {}) {
    super(code, message, { cause: options.cause, permanent: false });
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** The message is not a valid coredump.uploaded event: stored as failed, then terminated (never redelivered). */
export class InvalidEventError extends PermanentError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("invalid_event", message, options);
  }
}

/** The worker is shutting down and interrupted the job: the message goes back to the queue, no result is stored. */
export class ShutdownError extends TransientError {
  constructor(message = "worker is shutting down; job left to redelivery") {
    super("shutdown", message);
  }
}

export class GdbTimeoutError extends PermanentError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("gdb_timeout", message, options);
  }
}

/**
 * Normalizes anything thrown into an Error; never lets a string escape.
 * `isNativeError` also catches errors from another realm (jest's VM
 * contexts), which fail `instanceof Error`.
 */
export function toError(e: unknown): Error {
  if (e instanceof Error || types.isNativeError(e)) return e;
  if (typeof e === "string") return new Error(e);
  try {
    return new Error(JSON.stringify(e));
  } catch {
    return new Error(String(e));
  }
}

export function isPermanent(e: unknown): boolean {
  return e instanceof CoreSightError && e.permanent;
}

export function errorCodeOf(e: unknown): ErrorCode {
  return e instanceof CoreSightError ? e.code : "internal_error";
}
