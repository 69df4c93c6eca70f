#!/usr/bin/env node
/**
 * Bundles the shipped binary: dist/worker/cli.js (tsc's output) and every
 * module it can load into dist/bundle/, one file per command chunk
 * (`--splitting`: `--help` still loads only the entry and the dispatcher).
 *
 * Why: a process that runs one command (`analyze core`) spends most of its
 * own start-up in the ESM loader, resolving and reading some 300 files
 * (execa and zod alone are 200); a bundle is a handful of files. Measured in
 * bench/startup.ts, the bundle and the unbundled dist/ side by side.
 *
 * dist/bundle.meta.json is esbuild's metafile: which source modules each
 * chunk holds.
 *
 * Not bundled: better-sqlite3 (a native addon, loaded from node_modules),
 * pg-native (pg's optional native driver, never installed here), the NATS
 * client (@nats-io/*: one of its packages must stay out, below, and a
 * connection from a bundled copy handed to a KV from node_modules' copy would
 * mix two nats-core's), and any
 * package that code imports with `await import()` but that has no ES module
 * build (@nats-io/kv): in a split bundle such a chunk exports only `default`,
 * so `const { Kvm } = await import("@nats-io/kv")` would be undefined, while
 * node's own loader gives a CommonJS module its named exports. Those load
 * from node_modules, which the image ships (production dependencies).
 * Usage: node scripts/bundle.mjs   (after tsc; `make build` and `make build-dev` run both)
 */
import { build } from "esbuild";
import fs from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const out = path.join(root, "dist/bundle");
await fs.rm(out, { recursive: true, force: true });
/** Packages imported dynamically that have no ES module build stay external (see above). */
const dynamicCommonJs = {
  name: "dynamic-commonjs-external",
  setup(b) {
    b.onResolve({ filter: /^[@a-z]/ }, async (args) => {
      if (args.kind !== "dynamic-import" || args.path.startsWith("node:")) return undefined;
      const name = args.path.split("/").slice(0, args.path.startsWith("@") ? 2 : 1).join("/");
      const pkg = JSON.parse(await fs.readFile(path.join(root, "node_modules", name, "package.json"), "utf8"));
      const esm = pkg.type === "module" || typeof pkg.module === "string";
      if (!esm) externals.add(name);
      return esm ? undefined : { path: args.path, external: true };
    });
  },
};
const externals = new Set();

const result = await build({
  absWorkingDir: root,
  entryPoints: { cli: "dist/worker/cli.js" },
  outdir: out,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node22",
  // @nats-io/*: all of them, not only kv (below), so that one copy of nats-core serves the connection and the KV.
  external: ["better-sqlite3", "pg-native", "@nats-io/*"],
  // A package's ES module build first (the AWS SDK's dist-es): `await import()` of a CommonJS build
  // in a bundle yields only a default export, and `const { S3Client } = await import(...)` would be undefined.
  mainFields: ["module", "main"],
  // CommonJS dependencies (the AWS SDK's, pg) call require(): give every chunk one.
  banner: { js: 'import { createRequire as __coresightRequire } from "node:module"; const require = __coresightRequire(import.meta.url);' },
  // The shebang of the entry is kept by esbuild; licence comments go to the end of each chunk.
  legalComments: "eof",
  metafile: true,
  logLevel: "warning",
  plugins: [dynamicCommonJs],
});
// Which modules went into which chunk: test/worker/cli.test.ts checks what `--help` loads with it.
await fs.writeFile(path.join(root, "dist/bundle.meta.json"), JSON.stringify(result.metafile));
const files = Object.entries(result.metafile.outputs);
const bytes = files.reduce((n, [, o]) => n + o.bytes, 0);
console.log(
  `bundle: dist/bundle/cli.js and ${files.length - 1} chunks, ${(bytes / 2 ** 20).toFixed(1)} MiB` +
    `; from node_modules: better-sqlite3, @nats-io/*` +
    (externals.size > 0 ? `, and (imported with import(), no ES module build) ${[...externals].sort().join(", ")}` : ""),
);
