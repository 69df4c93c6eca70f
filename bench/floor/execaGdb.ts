/**
 * The floor of any front end that runs gdb through execa, as `analyze` does:
 * a node process that turns the compile cache on, loads execa with the
 * worker's own launch code (lib/gdb/launch.ts startGdb: setpriv, gdb's
 * arguments and environment) and hands gdb a command file computed before
 * the process started. No configuration, no core checks, no symbols, no
 * parse. bench/startup.ts bundles it as scripts/bundle.mjs bundles the CLI
 * (execa in a chunk loaded after the cache is on) and times it beside
 * `analyze` and bare gdb.
 * Usage: node <bundle>/execaGdb.js <command file>
 */
import module from "node:module";

module.enableCompileCache?.();
const { runCommandFile } = await import("./execaRun.js");
process.exitCode = await runCommandFile(process.argv[2]!);
