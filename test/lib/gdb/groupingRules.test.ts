/**
 * The operator's grouping rules (lib/gdb/groupingRules.ts) as
 * explainSignature() applies them: one table, each row a rules file, a
 * crash thread, the signature and the reason given for each frame.
 */
import { describe, expect, it } from "@jest/globals";
import { compileGroupingRules, GroupingRulesError, parseGroupingRules, validateGroupingRules, type GroupingRulesInput } from "../../../lib/gdb/groupingRules.js";
import { parseBacktrace } from "../../../lib/gdb/parseBacktrace.js";
import { explainSignature, signatureOf } from "../../../lib/gdb/signature.js";
import type { Thread } from "../../../lib/result.js";

const LIBC = "/lib/x86_64-linux-gnu/libc.so.6";
// An abort from the program's own fatal-error wrapper, through a vendored
// library and a system-installed plugin of the team's.
const thread: Thread = parseBacktrace(
  [
    `#0  0x1 in __pthread_kill_implementation () from ${LIBC}`,
    `#1  0x2 in raise () from ${LIBC}`,
    `#2  0x3 in abort () from ${LIBC}`,
    "#3  0x4 in log_fatal (msg=0x0) at src/log.c:40",
    "#4  0x5 in yaml_parse () from /opt/myco/vendor/libyaml.so.0",
    "#5  0x6 in myco::Plugin::load () from /usr/lib/myco/libplugin.so",
    `#6  0x7 in memcpy () from ${LIBC}`,
    "#7  0x8 in load_config (path=0x0) at src/config.c:12",
    "#8  0x9 in main () at src/main.c:5",
    `#9  0xa in __libc_start_call_main () from ${LIBC}`,
  ].join("\n"),
).threads[0]!;

const steps = (rules: GroupingRulesInput | null) => explainSignature(thread, { rules: compileGroupingRules(rules ? validateGroupingRules(rules) : null) });

describe("explainSignature with the operator's rules", () => {
  const cases: Array<[string, GroupingRulesInput | null, string, Record<number, string>]> = [
    [
      "no rules: the built-in in-app rule",
      null,
      "log_fatal | yaml_parse | load_config | main",
      {
        0: "above the crash frame",
        3: "crash frame",
        4: "in-app",
        5: "not in-app: a system library",
        6: "not in-app: a system library",
        9: "thread start-up frame",
      },
    ],
    [
      "skip the fatal-error wrapper: the next frame starts the signature",
      { skip: [{ function: "^log_fatal$" }] },
      "yaml_parse | load_config | main",
      {
        3: "skipped by skip[0] function /^log_fatal$/",
        4: "in-app",
      },
    ],
    [
      "a system frame right below a skipped crash frame stands for it",
      { skip: [{ function: "^(log_fatal|yaml_parse)$" }] },
      "myco::Plugin::load | load_config | main",
      {
        5: "first frame left: stands for the skipped crash frame",
        6: "not in-app: a system library",
      },
    ],
    [
      "skip by module",
      { skip: [{ module_prefix: "/opt/myco/vendor/" }] },
      "log_fatal | load_config | main",
      {
        4: 'skipped by skip[0] module_prefix "/opt/myco/vendor/"',
      },
    ],
    [
      "a system-installed library of the team's is in-app by function prefix",
      { in_app: [{ function_prefix: "myco::" }] },
      "log_fatal | yaml_parse | myco::Plugin::load | load_config | main",
      {
        5: 'in-app by in_app[0] function_prefix "myco::"',
      },
    ],
    [
      "a vendored library is not in-app",
      { not_in_app: [{ module: "/vendor/" }] },
      "log_fatal | load_config | main",
      {
        4: "not in-app by not_in_app[0] module //vendor//",
      },
    ],
    [
      "not_in_app wins over in_app",
      { in_app: [{ module_prefix: "/opt/myco/" }], not_in_app: [{ module_prefix: "/opt/myco/vendor/" }] },
      "log_fatal | load_config | main",
      {
        4: 'not in-app by not_in_app[0] module_prefix "/opt/myco/vendor/"',
      },
    ],
    ["max_frames", { max_frames: 2 }, "log_fatal | yaml_parse", { 7: "past the frame limit (2)", 8: "past the frame limit (2)" }],
    [
      "a matcher with two keys needs both",
      { skip: [{ function: "^memcpy$", module: "libplugin" }] },
      "log_fatal | yaml_parse | load_config | main",
      {
        6: "not in-app: a system library",
      },
    ],
  ];
  it.each(cases)("%s", (_what, rules, signature, reasons) => {
    const e = steps(rules);
    expect(e.signature?.text).toBe(signature);
    expect(e.steps).toHaveLength(thread.frames.length);
    for (const [i, reason] of Object.entries(reasons)) expect([Number(i), e.steps[Number(i)]!.reason]).toEqual([Number(i), expect.stringContaining(reason)]);
    // Kept frames are exactly the signature's, in order.
    expect(e.steps.filter((s) => s.kept).map((s) => s.text)).toEqual(e.signature?.frames);
    expect(signatureOf(thread, { rules: compileGroupingRules(rules ? validateGroupingRules(rules) : null) })).toEqual(e.signature);
  });

  it("a recursion: the repeats are said to be a cycle", () => {
    const deep = parseBacktrace(
      ["#0  0x1 in descend (n=1) at r.c:3", "#1  0x2 in descend (n=2) at r.c:3", "#2  0x3 in descend (n=3) at r.c:3", "#3  0x4 in main () at r.c:9"].join("\n"),
    ).threads[0]!;
    const e = explainSignature(deep);
    expect(e.signature?.text).toBe("descend");
    expect(e.steps.map((s) => [s.kept, s.reason.split(":")[0]])).toEqual([
      [true, "crash frame"],
      [false, "recursion"],
      [false, "recursion"],
      [false, "below a recursion"],
    ]);
  });
});

describe("rules files", () => {
  it("parses the documented shape; every list is optional", () => {
    expect(parseGroupingRules("{}")).toEqual({ skip: [], in_app: [], not_in_app: [] });
    expect(compileGroupingRules(parseGroupingRules('{"max_frames": 8}')).maxFrames).toBe(8);
    expect(compileGroupingRules(null).maxFrames).toBe(5);
  });
  it.each([
    ["not JSON", "{", /not JSON/],
    ["an unknown key", '{"skips": []}', /skips|Unrecognized/],
    ["a matcher with no key", '{"skip": [{}]}', /^skip\[0\]: a matcher needs/],
    ["a bad regular expression", '{"in_app": [{"function": "[a"}]}', /^in_app\[0\]\.function: /],
    ["max_frames out of range", '{"max_frames": 65}', /^max_frames: /],
  ])("%s is a GroupingRulesError naming the entry", (_what, text, message) => {
    expect(() => parseGroupingRules(text)).toThrow(GroupingRulesError);
    expect(() => parseGroupingRules(text)).toThrow(message);
  });
});
