/**
 * The uncaught C++ exception probe as a section of the one gdb run: real gdb
 * on the fixture cores. The probe must find the exception where the crash
 * thread threw, and say nothing (no output, no error) everywhere else.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { runGdb } from "../../../../lib/gdb/run.js";
import { ERRORS_KEY } from "../../../../lib/gdb/sections.js";
import { parseRuntimeSection, RUNTIME_SECTION, runtimeProbeSection } from "../../../../lib/gdb/probes/runtime.js";
import { fixture, requireFixtures, type FixtureName } from "../../../helpers/fixtures.js";

let tmp: string;
beforeAll(async () => {
  requireFixtures();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "runtime-test-"));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** One gdb run with the probe, then a section that shows the language the probe left behind. */
async function probeRun(name: FixtureName) {
  const f = fixture(name);
  return runGdb({
    core: f.core,
    exe: f.exe,
    timeoutMs: 60_000,
    extraSections: [runtimeProbeSection(), { name: "after", commands: ["show language"] }],
  });
}

describe("runtime probe section", () => {
  test("cxx-uncaught: the thrown type and its what() text", async () => {
    const run = await probeRun("cxx-uncaught");
    expect(parseRuntimeSection(run.sections[RUNTIME_SECTION])).toEqual({
      exception_type: "std::runtime_error",
      exception_message: "config file missing: /etc/app/config.yaml",
    });
    expect(run.sections[ERRORS_KEY]).toBeUndefined();
    // The probe switches to C++ for the names and puts back the C that the later sections rely on.
    expect(run.sections.after).toMatch(/current source language is "c"/);
    expect(run.sections.abort_message).toMatch(/^\{"abort_message": /m);
  });

  for (const name of ["null-deref", "abort-assert", "stack-overflow", "multithread"] as const) {
    test(`${name}: no throw frame, so nothing printed and no error`, async () => {
      const run = await probeRun(name);
      expect(run.sections[RUNTIME_SECTION]).toBe("");
      expect(run.sections[ERRORS_KEY]).toBeUndefined();
      expect(run.sections.after).toMatch(/current source language is "c"/);
    });
  }
});

describe("parseRuntimeSection", () => {
  test("reads the probe's JSON line", () => {
    expect(parseRuntimeSection('{"exception_type": "app::Plain", "exception_message": null}')).toEqual({ exception_type: "app::Plain", exception_message: null });
  });

  test("nothing found, an error only, no line, or not JSON: null", () => {
    expect(parseRuntimeSection(undefined)).toBeNull();
    expect(parseRuntimeSection("")).toBeNull();
    expect(parseRuntimeSection('{"exception_type": null, "exception_message": null}')).toBeNull();
    expect(parseRuntimeSection('{"exception_type": null, "exception_message": null, "error": "Cannot access memory at address 0x0"}')).toBeNull();
    expect(parseRuntimeSection("{not json")).toBeNull();
    expect(parseRuntimeSection('{"exception_type": 3}')).toBeNull();
  });

  test("skips gdb noise before the line", () => {
    expect(parseRuntimeSection('warning: something\n{"exception_type": "std::logic_error", "exception_message": "x"}')).toEqual({
      exception_type: "std::logic_error",
      exception_message: "x",
    });
  });
});
