/** docs/api.md and README.md against the code they describe: no drift. */
import { describe, expect, it } from "@jest/globals";
import fs from "node:fs";
import path from "node:path";
import { groupState, type GroupState } from "../../api/groups.js";
import { API_CONFIG_VARIABLES } from "../../lib/config.js";
import { repoRoot } from "../helpers/fixtures.js";

const apiMd = fs.readFileSync(path.join(repoRoot, "docs/api.md"), "utf8");
const readme = fs.readFileSync(path.join(repoRoot, "README.md"), "utf8");

describe("docs of the CoreSight API", () => {
  it("every API variable is in docs/api.md", () => {
    const names = API_CONFIG_VARIABLES.flatMap(([n]) => n.split("/").map((s) => s.trim().replace(/_\*$/, "_")));
    for (const n of names) expect({ n, found: apiMd.includes(n) }).toEqual({ n, found: true });
    for (const n of ["API_LISTEN", "DATABASE_URL", "CORESIGHT_AGENT_TOKENS", "CORESIGHT_WORKER_TOKENS", "CORESIGHT_READ_TOKENS"]) expect(readme).toContain(n);
  });

  it("the crash-group state table matches groupState()", () => {
    const section = apiMd.slice(apiMd.indexOf("## Crash groups"));
    const rows = [...section.matchAll(/^\| (set|not set) \| (yes|no|–) \| (any|1|> 1) \| `(\w+)` \|$/gm)];
    expect(rows).toHaveLength(4);
    const t0 = "2026-01-01T00:00:00.000Z";
    const t1 = "2026-01-02T00:00:00.000Z";
    for (const [, resolved, after, count, state] of rows) {
      const g = { count: count === "> 1" ? 2 : 1, resolved_at: resolved === "set" ? t0 : null, last_seen: after === "yes" ? t1 : t0 };
      expect({ row: [resolved, after, count], state: groupState(g) }).toEqual({ row: [resolved, after, count], state: state as GroupState });
    }
  });
});
