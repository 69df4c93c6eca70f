/**
 * The crash browser's login and CSRF design (docs/api.md, "Crash browser"):
 *
 * - Login: a form at /ui/login takes a read or worker token (the same tokens
 *   the query API takes) and, when the authenticator knows it, sets it as
 *   the cookie `coresight_ui`: HttpOnly (no script reads it), SameSite=Strict
 *   (no other site's page sends it), Path=/, Secure when the request came
 *   over https (directly or as X-Forwarded-Proto). Every request
 *   re-authenticates the cookie's token, so a revoked token ends the session
 *   at once and any API replica serves any session; there is no session
 *   table. A token is never taken from the URL (it would land in history,
 *   proxies' logs and Referer headers) and never written into a page.
 * - CSRF: besides SameSite=Strict, every POST form carries `csrf`, a digest
 *   of the session's token (sha256 with a fixed label: it names the session
 *   without giving the token away), checked in constant time; and a POST
 *   whose Origin header is present must be this host.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type http from "node:http";

export const COOKIE = "coresight_ui";
const MAX_AGE_S = 12 * 3600;

/** The session token from the request's Cookie header, or undefined. */
export function sessionToken(req: http.IncomingMessage): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const i = part.indexOf("=");
    if (i < 0) continue;
    if (part.slice(0, i).trim() !== COOKIE) continue;
    try {
      const v = decodeURIComponent(part.slice(i + 1).trim());
      return v === "" ? undefined : v;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

function secure(req: http.IncomingMessage): boolean {
  const xf = req.headers["x-forwarded-proto"];
  return (req.socket as { encrypted?: boolean }).encrypted === true || (typeof xf === "string" && xf.split(",")[0]!.trim() === "https");
}

export function sessionCookie(req: http.IncomingMessage, token: string): string {
  return `${COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${MAX_AGE_S}${secure(req) ? "; Secure" : ""}`;
}

export function clearedCookie(req: http.IncomingMessage): string {
  return `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0${secure(req) ? "; Secure" : ""}`;
}

/** The CSRF value of a session: derived from its token, so any replica checks it without state. */
export function csrfOf(token: string): string {
  return createHash("sha256").update(`coresight-ui-csrf\0${token}`, "utf8").digest("base64url");
}

export function csrfValid(token: string, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const want = Buffer.from(csrfOf(token));
  const got = Buffer.from(presented);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** A present Origin header must name this host (a cross-site form post carries the other site's). */
export function sameOrigin(req: http.IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  if (origin === "null") return false;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}
