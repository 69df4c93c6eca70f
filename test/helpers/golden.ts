/**
 * Golden files: expected output kept in the repository, compared as JSON.
 *
 * - `UPDATE_GOLDEN=1` rewrites the golden file with the actual value.
 * - On a mismatch, `<golden>.actual` is written beside it (gitignored), so a
 *   reviewer can diff the two and copy it over when the change is intended.
 * - Values are scrubbed first: what changes from run to run (ASLR addresses,
 *   pids) never reaches a golden file. Paths need no scrubbing: the fixtures
 *   are compiled with -ffile-prefix-map (scripts/build-fixtures.sh), so no
 *   path of the building machine is in them; a golden that shows one is a
 *   bug in that script.
 */
import fs from "node:fs/promises";
import path from "node:path";
import { expect } from "@jest/globals";
import { repoRoot } from "./fixtures.js";

export const goldenDir = path.join(repoRoot, "fixtures", "golden");

/** Addresses below this are kept: a null pointer plus an offset is part of the behaviour. */
const KEEP_BELOW = 0x10000n;

/** Replaces large hex addresses and LWP/pid numbers in every string of `value`. */
export function scrub<T>(value: T): T {
  if (typeof value === "string") {
    return value
      .replace(/\b0x[0-9a-fA-F]+\b/g, (a) => (BigInt(a) < KEEP_BELOW ? a : "<addr>"))
      .replace(/\b(LWP|pid|process) \d+/g, "$1 <pid>") as T;
  }
  if (Array.isArray(value)) return value.map((v: unknown) => scrub(v)) as T;
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrub(v)])) as T;
  }
  return value;
}

/** Compares `actual` (scrubbed) with fixtures/golden/<name>.json, or rewrites it under UPDATE_GOLDEN=1. */
export async function expectGolden(name: string, actual: unknown, env: { UPDATE_GOLDEN?: string } = process.env): Promise<void> {
  const file = path.join(goldenDir, `${name}.json`);
  const value = scrub(actual);
  const text = JSON.stringify(value, null, 2) + "\n";
  if (env.UPDATE_GOLDEN === "1") {
    await fs.mkdir(goldenDir, { recursive: true });
    await fs.writeFile(file, text);
    await fs.rm(`${file}.actual`, { force: true });
    return;
  }
  const expected: unknown = JSON.parse(await fs.readFile(file, "utf8").catch(() => {
    throw new Error(`golden file ${file} missing: run with UPDATE_GOLDEN=1 to create it`);
  }));
  if (JSON.stringify(expected) !== JSON.stringify(value)) {
    await fs.writeFile(`${file}.actual`, text);
  } else {
    await fs.rm(`${file}.actual`, { force: true });
  }
  expect(value).toEqual(expected);
}
