/**
 * The layout's import rules (shared/ARCHITECTURE.md), read from the source:
 * data flows one way, lib/ is the parts, worker/ and api/ meet only through
 * lib/ (and the one CLI whose commands can start either), and dev/ and
 * bench/ are never reachable from what the image ships.
 */
import { describe, expect, it } from "@jest/globals";
import fs from "node:fs";
import path from "node:path";
import { repoRoot } from "./helpers/fixtures.js";

const SHIPPED = ["lib", "worker", "api"] as const;

/** Every .ts file under `dir`, relative to the repository root. */
function sources(dir: string): string[] {
  return (fs.readdirSync(path.join(repoRoot, dir), { recursive: true, encoding: "utf8" }) as string[]).filter((f) => f.endsWith(".ts")).map((f) => path.join(dir, f));
}

/** The top-level folder each relative import (static, dynamic or re-export) of `file` lands in. */
function importedTops(file: string): { spec: string; top: string }[] {
  const text = fs.readFileSync(path.join(repoRoot, file), "utf8");
  const specs = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)["']/gm)].map((m) => m[1]!);
  return specs.map((spec) => ({ spec, top: path.relative(repoRoot, path.resolve(repoRoot, path.dirname(file), spec)).split(path.sep)[0]! }));
}

/** "file → spec" for each import of a file under `dir` into a folder `forbidden` says no to. */
function violations(dir: string, forbidden: (top: string, file: string) => boolean): string[] {
  return sources(dir).flatMap((file) =>
    importedTops(file)
      .filter(({ top }) => forbidden(top, file))
      .map(({ spec }) => `${file} → ${spec}`),
  );
}

describe("source layout", () => {
  it("reads the imports it checks (the rules below are not vacuous)", () => {
    expect(importedTops("dev/demo.ts").map((i) => i.top)).toEqual(expect.arrayContaining(["lib", "worker", "dev"]));
    expect(importedTops("worker/commands/api.ts").map((i) => i.top)).toContain("api");
  });

  it("lib/ imports nothing from worker/, api/, dev/ or bench/", () => {
    expect(violations("lib", (top) => ["worker", "api", "dev", "bench"].includes(top))).toEqual([]);
  });

  it("worker/ and api/ never import dev/ or bench/", () => {
    for (const dir of ["worker", "api"]) expect(violations(dir, (top) => top === "dev" || top === "bench")).toEqual([]);
  });

  it("api/ never imports worker/; worker/ reaches api/ only from its CLI commands", () => {
    expect(violations("api", (top) => top === "worker")).toEqual([]);
    expect(violations("worker", (top, file) => top === "api" && !file.startsWith(path.join("worker", "commands") + path.sep))).toEqual([]);
  });

  it("the service build (tsconfig.build.json, what the image compiles) includes only lib, worker and api", () => {
    const config = JSON.parse(fs.readFileSync(path.join(repoRoot, "tsconfig.build.json"), "utf8")) as { include: string[] };
    expect([...config.include].sort()).toEqual([...SHIPPED].sort());
  });
});
