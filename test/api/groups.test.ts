import { describe, expect, it } from "@jest/globals";
import { groupState, type GroupState } from "../../api/groups.js";

describe("groupState (the table in api/groups.ts)", () => {
  const t0 = "2026-01-01T00:00:00.000Z";
  const t1 = "2026-01-02T00:00:00.000Z";
  const cases: Array<[string, { count: number; last_seen: string; resolved_at: string | null }, GroupState]> = [
    ["one occurrence, never resolved", { count: 1, last_seen: t0, resolved_at: null }, "new"],
    ["several, never resolved", { count: 3, last_seen: t1, resolved_at: null }, "ongoing"],
    ["resolved after the last occurrence", { count: 3, last_seen: t0, resolved_at: t1 }, "resolved"],
    ["resolved at the same instant as the last occurrence", { count: 1, last_seen: t0, resolved_at: t0 }, "resolved"],
    ["seen again after resolved", { count: 4, last_seen: t1, resolved_at: t0 }, "regressed"],
    ["one occurrence, seen after resolved", { count: 1, last_seen: t1, resolved_at: t0 }, "regressed"],
  ];
  it.each(cases)("%s", (_name, g, state) => {
    expect(groupState(g)).toBe(state);
  });
});
