/**
 * The Node version floor (worker/runtime.ts): the pure check, package.json
 * agreeing with it, and the shipped binary started by an older node printing
 * one line instead of a stack.
 */
import { describe, expect, it } from "@jest/globals";
import fs from "node:fs";
import path from "node:path";
import { execa, execaSync } from "execa";
import { MIN_NODE, unsupportedNode } from "../../worker/runtime.js";
import { cliPath, repoRoot } from "../helpers/workerProcess.js";

describe("unsupportedNode", () => {
  it.each([
    ["24.22.3", false],
    ["26.0.0", false],
    ["22.15.0", false],
    ["22.14.9", true],
    ["20.20.2", true],
    ["18.0.0", true],
  ])("Node %s → refused: %s", (version, refused) => {
    const line = unsupportedNode(version);
    expect(line !== null).toBe(refused);
    if (line) expect(line).toBe(`coresight-worker needs Node.js >= 22.15 (Node 24 LTS recommended); this is Node ${version}`);
  });

  it("is the floor package.json's engines declares", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { engines: { node: string } };
    expect(pkg.engines.node).toBe(`>=${MIN_NODE.major}.${MIN_NODE.minor}`);
  });
});

/** A node binary older than the floor on this machine (Debian 12's own is 20), or null. */
function olderNode(): string | null {
  for (const candidate of ["/usr/bin/node", "/usr/local/bin/node"]) {
    if (!fs.existsSync(candidate)) continue;
    const v = execaSync(candidate, ["-p", "process.versions.node"], { reject: false }).stdout;
    if (typeof v === "string" && unsupportedNode(v.trim())) return candidate;
  }
  return null;
}

const old = olderNode();

it("the tests run on a supported node: make deps' Node 24 in .tools/node where the system node is older", () => {
  expect(unsupportedNode(process.versions.node)).toBeNull();
  if (old) expect(process.execPath).toBe(path.join(fs.realpathSync(path.join(repoRoot, ".tools", "node")), "bin", "node"));
});

// Machines of this project's kind have Debian's Node 20 in /usr/bin; elsewhere the case is reported as skipped.
(old ? describe : describe.skip)(`the binary under an older node (${old ?? "none on this machine"})`, () => {
  it("prints one line naming the version needed and exits 3", async () => {
    const r = await execa(old!, [cliPath, "--version"], { reject: false, stdin: "ignore" });
    expect(r.exitCode).toBe(3);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^coresight-worker needs Node\.js >= 22\.15 \(Node 24 LTS recommended\); this is Node 20\.\d+\.\d+$/);
  });
});
