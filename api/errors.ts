/**
 * Errors the API answers with: a status, a stable `error` code and a message
 * that names the field or header at fault. The message never quotes a token.
 */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, opts: { cause?: unknown; headers?: Record<string, string> } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.headers = opts.headers ?? {};
  }
}
