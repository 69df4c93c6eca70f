/**
 * Tokens kept in the database (`coresight-worker token create|list|revoke`,
 * scripts/init_auth.sh), beside the ones from the environment. A token is
 * 32 random bytes in base64url (43 characters, like the integration guide's
 * example); only its sha256 is stored, so a database dump gives no token
 * away, and it is looked up by that digest.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Kysely } from "kysely";
import type { Role } from "./auth.js";
import type { ApiTokenRow, Database } from "./db/schema.js";

export const ROLES: readonly Role[] = ["agent", "worker", "read"];

export function sha256Hex(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** Creates a token; the clear value is returned once and never kept. */
export async function createToken(db: Kysely<Database>, role: Role, name: string, now = new Date().toISOString()): Promise<{ token: string; row: ApiTokenRow }> {
  const token = randomBytes(32).toString("base64url");
  const row: ApiTokenRow = { token_id: `tok_${randomBytes(6).toString("hex")}`, role, name, token_sha256: sha256Hex(token), created_at: now, revoked_at: null };
  await db.insertInto("api_token").values(row).execute();
  return { token, row };
}

export async function listTokens(db: Kysely<Database>): Promise<ApiTokenRow[]> {
  return db.selectFrom("api_token").selectAll().orderBy("created_at").orderBy("token_id").execute();
}

/** False when no active token has that id. */
export async function revokeToken(db: Kysely<Database>, tokenId: string, now = new Date().toISOString()): Promise<boolean> {
  const r = await db.updateTable("api_token").set({ revoked_at: now }).where("token_id", "=", tokenId).where("revoked_at", "is", null).executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** The role of an active stored token, by digest. */
export async function storedRoleOf(db: Kysely<Database>, token: string): Promise<Role | null> {
  const r = await db.selectFrom("api_token").select("role").where("token_sha256", "=", sha256Hex(token)).where("revoked_at", "is", null).executeTakeFirst();
  return r?.role ?? null;
}
