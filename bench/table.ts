/** One benchmark's output: `npm run bench` prints each as a Markdown table. */
export interface BenchTable {
  title: string;
  columns: string[];
  rows: Array<Array<string | number>>;
  /** What was measured, how, and any ratio worth reading. */
  notes?: string[];
}

export function renderTable(t: BenchTable): string {
  const cell = (v: string | number) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : v);
  const lines = [`### ${t.title}`, "", `| ${t.columns.join(" | ")} |`, `| ${t.columns.map(() => "---").join(" | ")} |`];
  for (const r of t.rows) lines.push(`| ${r.map(cell).join(" | ")} |`);
  if (t.notes?.length) lines.push("", ...t.notes.map((n) => `- ${n}`));
  return lines.join("\n") + "\n";
}

/** Median of a sample (the upper one for an even count); NaN when empty. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
}
