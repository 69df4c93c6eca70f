/**
 * analyzeDump on every fixture core: how much of an analysis is gdb itself
 * and how much is ours (core checks, decompression, parsing, summary).
 * Each core is analyzed 3 times; medians are reported. A second gdb column
 * hides the system's separate debug info (libc6-dbg), which is what a worker
 * without it pays.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { analyzeDump, type AnalyzeDumpOptions, type AnalyzeTimings } from "../lib/analyze.js";
import { type BenchTable, median } from "./table.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const RUNS = 3;
const CORES = ["null-deref", "null-deref-o2", "abort-assert", "cxx-uncaught", "div-zero", "builtin-trap", "sigbus", "multithread", "stack-overflow", "stripped", "rust-panic"];

async function measure(
  core: string,
  exe: string | null,
  extra: Pick<AnalyzeDumpOptions, "symbols" | "gdbIndexCache"> = {},
): Promise<{ total: number; gdb: number; decompress: number; status: string }> {
  const totals: number[] = [];
  const gdbs: number[] = [];
  const decompress: number[] = [];
  let status = "";
  for (let i = 0; i < RUNS; i++) {
    let t: AnalyzeTimings | undefined;
    const r = await analyzeDump({ core, exe, ...extra, onTimings: (x) => (t = x) });
    status = r.status === "completed" ? "completed" : `failed: ${r.error?.code}`;
    totals.push(t!.totalMs);
    gdbs.push(t!.gdbMs);
    decompress.push(t!.decompressMs);
  }
  return { total: median(totals), gdb: median(gdbs), decompress: median(decompress), status };
}

export default async function benchAnalyze(): Promise<BenchTable> {
  const dir = path.join(root, "build", "fixtures");
  const noDebug = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-bench-nodebug-"));
  const gdbIndexCache = { dir: path.join(noDebug, "gdb-index"), maxBytes: 1 << 30 };
  const rows: BenchTable["rows"] = [];
  let sumTotal = 0;
  let sumGdb = 0;
  try {
    const inputs: Array<{ label: string; core: string; exe: string | null }> = [];
    for (const name of CORES) {
      const core = path.join(dir, name, "core");
      if (!(await fs.stat(core).catch(() => null))) continue;
      inputs.push({ label: name, core, exe: path.join(dir, name, name) });
    }
    for (const ext of ["gz", "zst"]) {
      const core = path.join(dir, "null-deref", `core.${ext}`);
      if (await fs.stat(core).catch(() => null)) inputs.push({ label: `null-deref (core.${ext})`, core, exe: path.join(dir, "null-deref", "null-deref") });
    }
    if (inputs.length === 0) throw new Error(`no fixture cores in ${dir}: run \`make fixtures\` first`);
    for (const input of inputs) {
      const size = (await fs.stat(input.core)).size;
      const m = await measure(input.core, input.exe);
      // Typed options: an `extra` analyzeDump does not take would measure nothing (this column once passed
      // `debugFileDirectories`, which it ignores, and so matched the first gdb column by construction).
      const bare = await measure(input.core, input.exe, { symbols: { cacheDir: path.join(noDebug, "symbols"), cacheMaxBytes: 1 << 30, hostDebugFiles: false } });
      await analyzeDump({ core: input.core, exe: input.exe, gdbIndexCache }); // fills the index cache: a worker after its first jobs
      const warm = await measure(input.core, input.exe, { gdbIndexCache });
      sumTotal += m.total;
      sumGdb += m.gdb;
      rows.push([
        input.label,
        `${(size / 1024).toFixed(0)} KiB`,
        m.total,
        m.gdb,
        `${((100 * m.gdb) / m.total).toFixed(0)} %`,
        m.total - m.gdb,
        m.decompress,
        bare.gdb,
        warm.gdb,
        `${(m.gdb / warm.gdb).toFixed(2)}×`,
        m.status,
      ]);
    }
    rows.push(["overall", "", sumTotal, sumGdb, `${((100 * sumGdb) / sumTotal).toFixed(0)} %`, sumTotal - sumGdb, "", "", "", "", ""]);
  } finally {
    await fs.rm(noDebug, { recursive: true, force: true });
  }
  return {
    title: "analyze: time per core, inside gdb vs ours",
    columns: [
      "core",
      "size",
      "total ms",
      "gdb ms",
      "gdb share",
      "outside gdb ms",
      "decompress ms",
      "gdb ms, no system debug info",
      "gdb ms, warm index cache",
      "speed-up of gdb by the cache",
      "result",
    ],
    rows,
    notes: [
      `analyzeDump with --exe, median of ${RUNS} runs per core, one at a time; "outside gdb" = core checks + decompression + parse + summary.`,
      "gdb ms, no system debug info: the same run without this machine's separate debug files (hostDebugFiles: false, as on a worker without libc6-dbg): gdb reads far less DWARF.",
      "gdb ms, warm index cache: GDB_INDEX_CACHE (lib/gdb/indexCache.ts) filled by one analysis of the core first; gdb reads the libraries' DWARF indexes back instead of building them (the executable's own is never cached). Speed-up = gdb ms / this.",
      "gdb start-up and symbol loading dominate small cores; the parse of their output is a few ms.",
    ],
  };
}
