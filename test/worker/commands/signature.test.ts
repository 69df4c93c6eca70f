/**
 * `signature explain`: on results and cores of the fixtures, with the
 * built-in rules and with a rules file.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { analyzeDump } from "../../../lib/analyze.js";
import { ConfigError } from "../../../lib/config.js";
import { explainResult } from "../../../lib/gdb/explain.js";
import { compileGroupingRules, DEFAULT_GROUPING_RULES, parseGroupingRules } from "../../../lib/gdb/groupingRules.js";
import type { Result } from "../../../lib/result.js";
import { UsageError } from "../../../worker/command.js";
import { signatureCommand } from "../../../worker/commands/signature.js";
import { captureIo } from "../../helpers/commandIo.js";
import { FIXTURE_NAMES, requireFixture, requireFixtures } from "../../helpers/fixtures.js";

let tmp: string;
let resultFile: string;
let assertResult: Result;
beforeAll(async () => {
  requireFixtures();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "signature-command-test-"));
  const f = requireFixture("abort-assert");
  assertResult = await analyzeDump({ core: f.core, exe: f.exe });
  resultFile = path.join(tmp, "abort-assert.json");
  await fs.writeFile(resultFile, JSON.stringify(assertResult));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

const capture = (env: Record<string, string | undefined> = {}) => captureIo(path.join(tmp, "work"), env);

async function rulesFile(name: string, text: string): Promise<string> {
  const p = path.join(tmp, name);
  await fs.writeFile(p, text);
  return p;
}

describe("explainResult reproduces every fixture's signature from its result", () => {
  for (const name of FIXTURE_NAMES) {
    test(name, async () => {
      const f = requireFixture(name);
      const r = await analyzeDump({ core: f.core, exe: f.exe });
      const e = explainResult(r, DEFAULT_GROUPING_RULES)!;
      expect(e.signature).toEqual(r.signature);
      expect(e.steps.filter((s) => s.kept).map((s) => s.text)).toEqual(r.signature?.frames);
    });
  }
});

describe("coresight-worker signature explain", () => {
  test("a result file: one row per frame with its rule, then the signature", async () => {
    const io = capture();
    expect(await signatureCommand(["explain", resultFile], io)).toBe(0);
    expect(io.out).toMatch(/^crash thread 1, rules: built-in \(no SIGNATURE_RULES\)$/m);
    expect(io.out).toMatch(/^ +#\d+ +- +abort +above the crash frame: signal, abort, assert or panic machinery$/m);
    expect(io.out).toMatch(/^ +#\d+ +yes +withdraw +crash frame$/m);
    expect(io.out).toMatch(/^ +#\d+ +yes +pay_invoice +in-app$/m);
    expect(io.out).toContain(`signature:   ${assertResult.signature!.hash}  withdraw | pay_invoice | main\n`);
    expect(io.out).not.toContain("in result:");
  });

  test("--rules: what a rules file would change, beside the result's own signature", async () => {
    const file = await rulesFile("skip-withdraw.json", JSON.stringify({ skip: [{ function: "^withdraw$" }], max_frames: 1 }));
    const io = capture();
    expect(await signatureCommand(["explain", resultFile, "--rules", file], io)).toBe(0);
    expect(io.out).toContain(`rules: ${file}`);
    expect(io.out).toMatch(/^ +#\d+ +- +withdraw +skipped by skip\[0\] function \/\^withdraw\$\/$/m);
    expect(io.out).toMatch(/^ +#\d+ +- +main +past the frame limit \(1\)$/m);
    expect(io.out).toMatch(/^signature: +[0-9a-f]{16}  pay_invoice$/m);
    expect(io.out).toContain(`in result:   ${assertResult.signature!.hash}  withdraw | pay_invoice | main  (made with other rules)`);
  });

  test("SIGNATURE_RULES is the default for --rules", async () => {
    const file = await rulesFile("env.json", JSON.stringify({ max_frames: 2 }));
    const io = capture({ SIGNATURE_RULES: file });
    expect(await signatureCommand(["explain", resultFile], io)).toBe(0);
    expect(io.out).toContain("rules: SIGNATURE_RULES");
    expect(io.out).toMatch(/^signature: +[0-9a-f]{16}  withdraw \| pay_invoice$/m);
  });

  test("--json: the steps, the signature and the result's own", async () => {
    const io = capture();
    expect(await signatureCommand(["explain", resultFile, "--json"], io)).toBe(0);
    const j = JSON.parse(io.out) as {
      crash_thread: number;
      steps: Array<{ index: number; text: string; kept: boolean; reason: string }>;
      signature: unknown;
      result_signature: unknown;
    };
    expect(j.crash_thread).toBe(1);
    expect(j.steps.filter((s) => s.kept).map((s) => s.text)).toEqual(["withdraw", "pay_invoice", "main"]);
    expect(j.signature).toEqual(assertResult.signature);
    expect(j.result_signature).toEqual(assertResult.signature);
  });

  test("a core: analyzed as analyze does, with the rules applied to the analysis itself", async () => {
    const f = requireFixture("external-kill");
    const io = capture();
    expect(await signatureCommand(["explain", f.core, "--exe", f.exe], io)).toBe(0);
    expect(io.out).toMatch(/^ +#0 +- +clock_nanosleep +above the crash frame: where the signal from another process found the thread/m);
    expect(io.out).toMatch(/^signature: +3bda51669bcf1f3b  wait_for_work \| run_worker \| main$/m);
  });

  test("errors: a bad rules file is a configuration error naming the entry; a missing input exits 5; usage", async () => {
    const bad = await rulesFile("bad.json", '{"in_app": [{"module": "["}]}');
    await expect(signatureCommand(["explain", resultFile, "--rules", bad], capture())).rejects.toThrow(ConfigError);
    await expect(signatureCommand(["explain", resultFile, "--rules", bad], capture())).rejects.toThrow(/--rules: .*in_app\[0\]\.module: /);
    const io = capture();
    expect(await signatureCommand(["explain", path.join(tmp, "nope.json")], io)).toBe(5);
    expect(io.err).toMatch(/cannot read/);
    await expect(signatureCommand(["explain"], capture())).rejects.toThrow(UsageError);
    await expect(signatureCommand(["list", resultFile], capture())).rejects.toThrow(/unknown subcommand/);
    const help = capture();
    expect(await signatureCommand(["explain", "--help"], help)).toBe(0);
    expect(help.out).toMatch(/^Usage: coresight-worker signature explain <result\.json \| core>/);
  });
});

describe("the analysis follows the operator's rules", () => {
  test("skip and in_app change the result's signature and its frames' in_app", async () => {
    const f = requireFixture("abort-assert");
    const rules = compileGroupingRules(parseGroupingRules(JSON.stringify({ skip: [{ function: "^withdraw$" }], in_app: [{ function: "^abort$" }] })));
    const r = await analyzeDump({ core: f.core, exe: f.exe, groupingRules: rules });
    expect(r.signature?.text).toBe("pay_invoice | main");
    const crash = r.threads.find((t) => t.crashed)!;
    expect(crash.frames.find((fr) => /^(__GI_)?abort$/.test(fr.function ?? ""))?.in_app).toBe(true);
  });
});
