/**
 * Paths of the crash fixtures that scripts/build-fixtures.sh builds (`make
 * fixtures`): one real core per behaviour, with its binary beside it.
 * Other tests reuse these instead of hard-coding build/ paths.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (where package.json lives). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const fixturesDir = path.join(repoRoot, "build", "fixtures");

export const FIXTURE_NAMES = [
  "null-deref",
  "null-deref-o2",
  "abort-assert",
  "cxx-uncaught",
  "div-zero",
  "builtin-trap",
  "sigbus",
  "multithread",
  "stack-overflow",
  "stripped",
  "rust-panic",
  "go-nil-deref",
  "external-kill",
] as const;
export type FixtureName = (typeof FIXTURE_NAMES)[number] | "autoload";

export interface Fixture {
  name: string;
  dir: string;
  core: string;
  /** The binary that crashed (for `stripped`: the stripped one). */
  exe: string;
}

export function fixture(name: FixtureName): Fixture {
  const dir = path.join(fixturesDir, name);
  return { name, dir, core: path.join(dir, "core"), exe: path.join(dir, name) };
}

/**
 * Throws, saying how to build it, when a fixture's core is not there. Every
 * fixture is required: `make deps` installs each toolchain they need, and
 * scripts/build-fixtures.sh fails (never skips) when one is missing, so a
 * test never passes for want of its fixture.
 */
export function requireFixture(name: FixtureName): Fixture {
  const f = fixture(name);
  if (!fs.existsSync(f.core)) {
    throw new Error(`${f.core} missing: run \`make fixtures\` (bash scripts/build-fixtures.sh) first; it names any toolchain it lacks`);
  }
  return f;
}

/** Throws a helpful error when fixtures have not been built at all. */
export function requireFixtures(): void {
  requireFixture("null-deref");
}

/** The compressed copies of null-deref's core. */
export const compressedCores = {
  gzip: path.join(fixturesDir, "null-deref", "core.gz"),
  zstd: path.join(fixturesDir, "null-deref", "core.zst"),
};

/** stripped's split symbols: the unstripped binary, its .debug, and a build-id tree for `set debug-file-directory`. */
export const strippedSymbols = {
  full: path.join(fixturesDir, "stripped", "stripped.full"),
  debug: path.join(fixturesDir, "stripped", "stripped.debug"),
  debugRoot: path.join(fixturesDir, "stripped", "debug-root"),
  buildIdFile: path.join(fixturesDir, "stripped", "build-id"),
};
