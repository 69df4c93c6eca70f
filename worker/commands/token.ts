/**
 * `coresight-worker token`: the CoreSight API's tokens kept in its database
 * (DATABASE_URL), beside the CORESIGHT_*_TOKENS of the environment. Only a
 * token's sha256 is stored; `create` prints the token once, on stdout alone,
 * so a script can capture it (scripts/init_auth.sh does).
 */
import { loadApiConfig } from "../../lib/config.js";
import { openDatabase } from "../../api/db/connect.js";
import { createToken, listTokens, revokeToken, ROLES } from "../../api/tokens.js";
import type { Role } from "../../api/auth.js";
import { EXIT, parseArgs, UsageError, type Command } from "../command.js";

const token: Command = {
  name: "token",
  help: `Usage: coresight-worker token create --role agent|worker|read [--name NAME]
       coresight-worker token list
       coresight-worker token revoke <token-id>

create  makes a token for a role and prints it (once: only its sha256 is
        kept). agent: CoreDog's \`token\`; worker: the workers'
        CORESIGHT_API_TOKEN; read: the query API.
list    id, role, name, created and revoked times (never the token).
revoke  the API refuses the token from its next request.

The database is DATABASE_URL's (default sqlite:./coresight.db), the API's own.
The running API sees new and revoked tokens at once.

Exit codes: 0 ok, 2 usage error (or an unknown token id), 3 configuration error.`,
  async run(argv) {
    const [sub, ...rest] = argv;
    const args = parseArgs(rest, { options: ["role", "name"] });
    if (sub !== "create" && sub !== "list" && sub !== "revoke") throw new UsageError(`expected create, list or revoke, got ${JSON.stringify(sub ?? "")}`);
    const config = loadApiConfig();
    const db = await openDatabase(config.database);
    try {
      if (sub === "create") {
        const role = args.options.get("role");
        if (!role || !(ROLES as readonly string[]).includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(", ")}`);
        const made = await createToken(db.kysely, role as Role, args.options.get("name") ?? role);
        process.stderr.write(`created ${made.row.token_id} (${made.row.role}, ${JSON.stringify(made.row.name)}); the token is shown only now\n`);
        process.stdout.write(`${made.token}\n`);
        return EXIT.ok;
      }
      if (sub === "list") {
        const rows = await listTokens(db.kysely);
        const lines = [["TOKEN ID", "ROLE", "NAME", "CREATED", "REVOKED"], ...rows.map((r) => [r.token_id, r.role, r.name, r.created_at, r.revoked_at ?? "-"])];
        const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
        process.stdout.write(
          lines
            .map((l) =>
              l
                .map((c, i) => c.padEnd(widths[i]!))
                .join("  ")
                .trimEnd(),
            )
            .join("\n") + "\n",
        );
        return EXIT.ok;
      }
      const id = args.positionals[0];
      if (!id) throw new UsageError("revoke needs a token id (see token list)");
      if (!(await revokeToken(db.kysely, id))) throw new UsageError(`no active token ${JSON.stringify(id)}`);
      process.stderr.write(`revoked ${id}\n`);
      return EXIT.ok;
    } finally {
      await db.close();
    }
  },
};
export default token;
