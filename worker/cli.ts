#!/usr/bin/env node
/**
 * The coresight-worker binary. Checks the Node version first, with nothing
 * else loaded, then hands over to the dispatcher (worker/main.ts).
 *
 * V8's compile cache is on (node:module enableCompileCache, in
 * NODE_COMPILE_CACHE or the OS temp dir; a read-only or missing directory
 * only turns it off): compiling the command's modules is much of a one-shot
 * command's start-up, and the cache keeps it to the first run of a build.
 */
import module from "node:module";
import { unsupportedNode } from "./runtime.js";

// Absent before Node 22.1: the version check below then says what to install.
module.enableCompileCache?.();

const problem = unsupportedNode(process.versions.node);
if (problem) {
  process.stderr.write(`${problem}\n`);
  process.exitCode = 3; // EXIT.config: the machine is set up wrong, not the input
} else {
  const { main } = await import("./main.js");
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (e: unknown) {
    // Loaded here, not up front: errors.ts brings zod, which `--help` does not need.
    const { toError } = await import("../lib/errors.js");
    process.stderr.write(`coresight-worker: ${toError(e).stack}\n`);
    process.exitCode = 1; // EXIT.failed
  }
}
