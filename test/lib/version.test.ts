import { expect, it } from "@jest/globals";
import fs from "node:fs";
import path from "node:path";
import { VERSION } from "../../lib/version.js";
import { repoRoot } from "../helpers/fixtures.js";

it("VERSION is package.json's version", () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { version: string };
  expect(VERSION).toBe(pkg.version);
});
