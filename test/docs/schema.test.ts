import { describe, expect, it } from "@jest/globals";
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { schemaJson } from "../../worker/commands/schema.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

describe("committed JSON Schemas match the code (make schema regenerates them)", () => {
  it.each([
    ["result", "docs/result.schema.json"],
    ["document", "docs/result-document.schema.json"],
  ] as const)("%s → %s", async (which, file) => {
    expect(await fs.readFile(path.join(root, file), "utf8")).toBe(schemaJson(which));
  });
});
