/**
 * The same floor as execaGdb.ts without execa: node:child_process spawns the
 * process startGdb would (launch.ts gdbCommand, given as JSON by the bench:
 * command, args, env with null for a variable removed, commandFile) and
 * reads its output to the end. Only
 * node built-ins are loaded, so it runs unbundled.
 * Usage: node spawnGdb.js <spec.json>
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";

interface Spec {
  command: string;
  args: string[];
  env: Record<string, string | null>;
  commandFile: string;
}

const spec = JSON.parse(readFileSync(process.argv[2]!, "utf8")) as Spec;
const env = { ...process.env };
for (const [k, v] of Object.entries(spec.env)) {
  if (v === null) delete env[k];
  else env[k] = v;
}
const child = spawn(spec.command, spec.args, { stdio: ["pipe", "pipe", "pipe"], detached: true, env });
child.stdin.end(readFileSync(spec.commandFile));
const out: Buffer[] = [];
child.stdout.on("data", (b: Buffer) => out.push(b));
child.stderr.resume();
child.on("close", (code) => {
  process.exitCode = code === 0 && out.length > 0 ? 0 : 1;
});
