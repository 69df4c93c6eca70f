/**
 * Bearer tokens and their roles. Three disjoint sets from the environment:
 * agent (CoreDog posts reports), worker (stores results; may also read,
 * resolve groups and reprocess) and read (the query API).
 *
 * Tokens from the environment are held only as sha256 digests and compared
 * in constant time against every known digest (no early exit), so neither
 * the comparison's timing nor a heap dump gives a token away. Tokens made
 * with `coresight-worker token create` live in the database as digests and
 * are looked up by digest (`lookup`). Nothing here logs or returns a token.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { ApiError } from "./errors.js";

export type Role = "agent" | "worker" | "read";

export interface TokenSets {
  agent: readonly string[];
  worker: readonly string[];
  read: readonly string[];
}

function digest(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

export interface Authenticator {
  /** The role of a presented token, or null when it is not one of ours. */
  roleOf(token: string): Promise<Role | null>;
  /**
   * The role of the request's credentials, required to be one of `allowed`.
   * @throws ApiError 401 without credentials or with an unknown token, 403 for a token of another role.
   */
  require(token: string | undefined, allowed: readonly Role[]): Promise<Role>;
}

/** `lookup`: the role of a token kept elsewhere (the database's api_token), or null. */
export function createAuthenticator(sets: TokenSets, lookup?: (token: string) => Promise<Role | null>): Authenticator {
  const known: Array<{ digest: Buffer; role: Role }> = [];
  for (const role of ["agent", "worker", "read"] as const) for (const t of sets[role]) known.push({ digest: digest(t), role });
  const roleOf = async (token: string): Promise<Role | null> => {
    const d = digest(token);
    let found: Role | null = null;
    for (const k of known) if (timingSafeEqual(k.digest, d) && found === null) found = k.role;
    return found ?? (lookup ? lookup(token) : null);
  };
  return {
    roleOf,
    async require(token, allowed) {
      const challenge = { "www-authenticate": 'Bearer realm="coresight"' };
      if (token === undefined || token === "") throw new ApiError(401, "unauthorized", "missing credentials: send Authorization: Bearer <token>", { headers: challenge });
      const role = await roleOf(token);
      if (role === null) throw new ApiError(401, "unauthorized", "unknown token", { headers: challenge });
      if (!allowed.includes(role))
        throw new ApiError(403, "forbidden", `a ${role} token cannot do this (needs ${allowed.map((r) => `${r === "agent" ? "an" : "a"} ${r} token`).join(" or ")})`);
      return role;
    },
  };
}

/** The token of an `Authorization: Bearer <token>` header; undefined when absent or another scheme. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : undefined;
}
