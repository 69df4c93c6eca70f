/** docs/api.md's grouping rules section against lib/gdb/groupingRules.ts: the tables, the example. */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "@jest/globals";
import { GroupingRulesSchema, MATCHER_KEYS, parseGroupingRules } from "../../lib/gdb/groupingRules.js";
import { repoRoot } from "../helpers/fixtures.js";

const apiMd = fs.readFileSync(path.join(repoRoot, "docs/api.md"), "utf8");
const section = apiMd.slice(apiMd.indexOf("### Grouping rules (SIGNATURE_RULES)"), apiMd.indexOf("### `coresight-worker signature explain`"));
const firstColumn = (table: string) => [...table.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]);

describe("docs/api.md: grouping rules", () => {
  it("the keys table lists the rules file's keys, the matcher table the matcher's", () => {
    const [keys, matchers] = section.split("A matcher has one or more");
    expect(firstColumn(keys!)).toEqual(Object.keys(GroupingRulesSchema.shape));
    expect(firstColumn(matchers!)).toEqual([...MATCHER_KEYS]);
  });
  it("the example in the docs is docs/signature-rules.example.json, and valid", () => {
    const example = fs.readFileSync(path.join(repoRoot, "docs/signature-rules.example.json"), "utf8");
    const shown = /```json\n([\s\S]*?)```/.exec(section)![1]!;
    expect(parseGroupingRules(shown)).toEqual(parseGroupingRules(example));
  });
});
