/**
 * `npm run bench` (or `make bench`): runs every benchmark side by side in one
 * process run, prints Markdown tables and writes them to bench/RESULTS.md.
 * Speed and memory are measured here, never asserted in tests.
 * BENCH_ONLY=parser,download runs a subset.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { renderTable, type BenchTable } from "./table.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const benches: Array<[string, () => Promise<{ default: () => Promise<BenchTable> }>]> = [
  ["parser", () => import("./parser.js")],
  ["satyr", () => import("./satyr.js")],
  ["startup", () => import("./startup.js")],
  ["analyze", () => import("./analyze.js")],
  ["download", () => import("./download.js")],
  ["pipeline", () => import("./pipeline.js")],
  ["storm", () => import("./storm.js")],
  ["pool", () => import("./pool.js")],
  ["symbols", () => import("./symbols.js")],
  ["image", () => import("./image.js")],
  ["ingest", () => import("./ingest.js")],
  ["ui", () => import("./ui.js")],
];

async function main(): Promise<void> {
  const only = (process.env.BENCH_ONLY ?? "").split(",").filter(Boolean);
  const cpu = os.cpus()[0]?.model ?? "unknown CPU";
  const header = [
    "# coresight-worker benchmarks",
    "",
    `Run ${new Date().toISOString()} on ${os.cpus().length} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}.`,
    "Shared, noisy machine: compare the ratios measured side by side in this run, not absolute numbers across runs.",
    "",
  ].join("\n");
  process.stdout.write(header + "\n");
  const parts = [header];
  for (const [name, load] of benches) {
    if (only.length > 0 && !only.includes(name)) continue;
    process.stderr.write(`bench: ${name}...\n`);
    const started = Date.now();
    let text: string;
    try {
      const mod = await load();
      text = renderTable(await mod.default());
    } catch (e: unknown) {
      text = `### ${name}\n\nfailed: ${(e as Error).message}\n`;
    }
    text += `\n_${name}: ${((Date.now() - started) / 1000).toFixed(1)} s_\n`;
    process.stdout.write("\n" + text);
    parts.push(text);
  }
  // A partial run (BENCH_ONLY) must not replace the full table set.
  const out = only.length > 0 ? "bench/RESULTS.partial.md" : "bench/RESULTS.md";
  await fs.writeFile(path.join(root, out), parts.join("\n"));
  process.stderr.write(`bench: written to ${out}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${(e as Error).stack}\n`);
  process.exitCode = 1;
});
