/**
 * Grouping rules: a crash group is every analysis with the same signature
 * hash (lib/gdb's signature, stable across pods, builds and ASLR bases).
 * Its state is one pure decision, table-tested in test/api/groups.test.ts:
 *
 * | resolved_at | an occurrence after resolved_at | count | state       |
 * |-------------|---------------------------------|-------|-------------|
 * | set         | no                              | any   | `resolved`  |
 * | set         | yes                             | any   | `regressed` |
 * | not set     | –                               | 1     | `new`       |
 * | not set     | –                               | > 1   | `ongoing`   |
 *
 * An occurrence's time is when the API received the report, so a crash that
 * happened before the resolve but was analyzed after it is no regression.
 */
export type GroupState = "new" | "ongoing" | "resolved" | "regressed";

export function groupState(g: { count: number; last_seen: string; resolved_at: string | null }): GroupState {
  if (g.resolved_at !== null) return g.last_seen > g.resolved_at ? "regressed" : "resolved";
  return g.count <= 1 ? "new" : "ongoing";
}
