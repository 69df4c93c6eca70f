/**
 * The result schema's version and a failed result, apart from the schema
 * itself (lib/result.ts): building those zod schemas is ~10 ms of module
 * loading that `analyze`, which only fills results in, does not need
 * (bench/startup.ts measures its start-up).
 */
import type { ErrorCode } from "./errors.js";
import type { Result } from "./result.js";

export const SCHEMA_VERSION = 1 as const;

/** A failed result: every field the schema requires, with the error. */
export function failedResult(code: ErrorCode, message: string, extra: Partial<Result> = {}): Result {
  return {
    schema_version: SCHEMA_VERSION,
    status: "failed",
    error: { code, message },
    signal: null,
    crash_thread: null,
    threads: [],
    crash_frame: null,
    signature: null,
    quality: 0,
    shared_libraries: [],
    abort_message: null,
    gdb: null,
    core: null,
    ...extra,
  };
}
